import { ARCHES } from "../core/arch.ts";
import { InputError } from "../core/errors.ts";
import { canonicalBytes, makeBlob, MEDIA_TYPES, type Blob, type Descriptor } from "./image.ts";
import { descriptorAt, descriptorsAt, parseObject } from "./descriptor.ts";
import { layoutFiles, layoutTar } from "./layout.ts";
import { distinctImages, layoutImages, type LayoutReader } from "./layout-read.ts";
import { PROFILE_ID_ANNOTATION, PROFILE_NAME_ANNOTATION } from "./installer.ts";

const VERSION_ANNOTATION = "org.opencontainers.image.version";
const CREATED_ANNOTATION = "org.opencontainers.image.created";

/** One architecture's image of an installer layout: its manifest (platform set) and every blob under it. */
interface ArchImage {
  source: string;
  manifest: Descriptor;
  blobs: Blob[];
  annotations: Record<string, string>;
}

/** The single-architecture images of an installer layout (its one index, or its one manifest). */
async function archImages(layout: LayoutReader): Promise<ArchImage[]> {
  const roots = distinctImages(layoutImages(layout));
  if (roots.length !== 1) throw new InputError(`${layout.source}: holds ${roots.length} images; give the installer layout of one build`);
  const root = roots[0] as Descriptor;
  const read = async (d: Descriptor): Promise<Blob> => ({ descriptor: d, data: await layout.blob(d) });
  const rootJson = parseObject(`${layout.source}: ${root.digest}`, await layout.blob(root));
  const annotations = (rootJson.annotations ?? {}) as Record<string, string>;
  const manifests = root.mediaType === MEDIA_TYPES.index ? descriptorsAt(`${layout.source}: index ${root.digest}`, rootJson, "manifests") : [root];
  return Promise.all(
    manifests.map(async (manifest) => {
      const where = `${layout.source}: manifest ${manifest.digest}`;
      if (!manifest.platform) throw new InputError(`${where}: has no platform; an installer's images name their architecture`);
      const body = parseObject(where, await layout.blob(manifest));
      const parts = [descriptorAt(where, "config", body.config), ...descriptorsAt(where, body, "layers")];
      return { source: layout.source, manifest, blobs: [await read(manifest), ...(await Promise.all(parts.map(read)))], annotations };
    }),
  );
}

/**
 * One installer index over the installers of one release built for different architectures (each a
 * layout `bronze build` wrote): every image kept byte for byte (their digests, signatures and SBOMs stay
 * valid), in bronze's order of architectures, under the tag `version`. They must be the same profile and
 * version; an architecture given twice is refused.
 */
export async function installerIndex(layouts: readonly LayoutReader[]): Promise<{ index: Blob; files: { path: string; data: Buffer }[]; tar: Buffer; architectures: string[] }> {
  if (layouts.length < 2) throw new InputError("give the installer layouts of at least two architectures (bronze build, and bronze build --arch for each other one)");
  const images = (await Promise.all(layouts.map(archImages))).flat();
  const first = images[0] as ArchImage;
  for (const image of images) {
    for (const key of [PROFILE_NAME_ANNOTATION, VERSION_ANNOTATION, CREATED_ANNOTATION]) {
      if (image.annotations[key] !== first.annotations[key]) {
        throw new InputError(`${image.source}: ${key} is '${image.annotations[key] ?? "(none)"}', ${first.source} says '${first.annotations[key] ?? "(none)"}'; an index holds one release of one profile`);
      }
    }
    const same = images.find((other) => other !== image && other.manifest.platform?.architecture === image.manifest.platform?.architecture);
    if (same) throw new InputError(`${image.source} and ${same.source}: both hold the ${image.manifest.platform?.architecture} image; give each architecture once`);
  }
  const order = (i: ArchImage) => ARCHES.findIndex((a) => a.oci === i.manifest.platform?.architecture);
  const sorted = [...images].sort((a, b) => order(a) - order(b));
  // what the release has in common: each architecture's profile ID stays on its own manifest's config
  const annotations = Object.fromEntries(Object.entries(first.annotations).filter(([key]) => key !== PROFILE_ID_ANNOTATION));
  const index = makeBlob(MEDIA_TYPES.index, canonicalBytes({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: sorted.map((i) => i.manifest), annotations }));
  const version = annotations[VERSION_ANNOTATION];
  if (!version) throw new InputError(`${first.source}: its index has no ${VERSION_ANNOTATION}; give an installer written by bronze build`);
  const files = layoutFiles(index, sorted.flatMap((i) => i.blobs), version);
  const epoch = Math.floor(Date.parse(annotations[CREATED_ANNOTATION] ?? "") / 1000);
  if (!Number.isFinite(epoch)) throw new InputError(`${first.source}: its index has no valid ${CREATED_ANNOTATION}`);
  return { index, files, tar: layoutTar(files, epoch), architectures: sorted.map((i) => i.manifest.platform?.architecture ?? "") };
}
