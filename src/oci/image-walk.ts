import { descriptorAt, descriptorsAt, parseObject } from "./descriptor.ts";
import { MEDIA_TYPES, type Blob, type Descriptor } from "./image.ts";

const isIndex = (mediaType: string) => mediaType === MEDIA_TYPES.index || mediaType === "application/vnd.docker.distribution.manifest.list.v2+json";

/** Every manifest (children first) and blob under a root descriptor, read through `fetch`. */
export async function walkImage(root: Descriptor, fetch: (d: Descriptor) => Promise<Buffer>): Promise<{ manifests: Blob[]; blobs: Descriptor[] }> {
  const manifests: Blob[] = [];
  const blobs = new Map<string, Descriptor>();
  const visit = async (descriptor: Descriptor): Promise<void> => {
    const data = await fetch(descriptor);
    const where = `manifest ${descriptor.digest}`;
    const parsed = parseObject(where, data);
    if (isIndex(descriptor.mediaType)) {
      for (const child of descriptorsAt(where, parsed, "manifests")) await visit(child);
    } else {
      const config = parsed.config === undefined ? [] : [descriptorAt(where, "config", parsed.config)];
      for (const blob of [...config, ...(parsed.layers === undefined ? [] : descriptorsAt(where, parsed, "layers"))]) blobs.set(blob.digest, blob);
    }
    manifests.push({ descriptor, data });
  };
  await visit(root);
  return { manifests, blobs: [...blobs.values()] };
}
