import { DEFAULT_ARCH } from "../core/arch.ts";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync, zstdDecompressSync } from "node:zlib";
import { InputError } from "../core/errors.ts";
import { digestOf, MEDIA_TYPES, type Descriptor } from "./image.ts";
import { REF_NAME_ANNOTATION } from "./layout.ts";
import { descriptorAt, descriptorsAt, parseObject } from "./descriptor.ts";
import type { ReadEntry } from "./tar-read.ts";

/** An OCI image layout, a directory or a tar of one; every blob is checked against its digest. */
export interface LayoutReader {
  source: string;
  index: { manifests: Descriptor[] };
  blob: (descriptor: Descriptor) => Promise<Buffer>;
}

/** An image held in memory (pulled from a registry, every digest checked) read as a layout of it alone. */
export function memoryLayout(source: string, root: Descriptor, blobs: readonly { descriptor: Descriptor; data: Buffer }[]): LayoutReader {
  const byDigest = new Map(blobs.map((b) => [b.descriptor.digest, b.data]));
  return {
    source,
    index: { manifests: [root] },
    blob: (descriptor) => {
      const data = byDigest.get(descriptor.digest);
      if (!data) return Promise.reject(new InputError(`${source}: blob ${descriptor.digest} is not part of the image`));
      return Promise.resolve(data);
    },
  };
}

export async function openLayout(source: string): Promise<LayoutReader> {
  const info = await stat(source).catch(() => {
    throw new InputError(`${source}: no such file or directory; give an OCI image layout directory or a tar of one`);
  });
  let read: (path: string) => Promise<Buffer | undefined>;
  if (info.isDirectory()) {
    read = (path) => readFile(join(source, path)).catch(() => undefined);
  } else {
    // a tar is read a file at a time, from where its headers say each file is
    const { indexTar, readSpan } = await import("./tar-index.ts");
    const files = await indexTar(source).catch((error: unknown) => {
      throw new InputError(`${source}: not a tar (${(error as Error).message}); give an OCI image layout directory or a tar of one`);
    });
    read = (path) => {
      const span = files.get(path);
      return span ? readSpan(source, span) : Promise.resolve(undefined);
    };
  }
  const indexBytes = await read("index.json");
  if (!indexBytes || !(await read("oci-layout"))) throw new InputError(`${source}: not an OCI image layout (no oci-layout and index.json)`);
  const index = parseObject(`${source}: index.json`, indexBytes);
  return {
    source,
    index: { manifests: index.manifests === undefined ? [] : descriptorsAt(`${source}: index.json`, index, "manifests") },
    blob: async (descriptor) => {
      const [algorithm, hex] = descriptor.digest.split(":");
      const data = algorithm && hex ? await read(`blobs/${algorithm}/${hex}`) : undefined;
      if (!data) throw new InputError(`${source}: blob ${descriptor.digest} is missing`);
      if (digestOf(data) !== descriptor.digest || data.length !== descriptor.size) {
        throw new InputError(`${source}: blob ${descriptor.digest} does not match its digest or size: corrupted or tampered`);
      }
      return data;
    },
  };
}

function uncompressed(layout: LayoutReader, layer: Descriptor, data: Buffer): Buffer {
  const compression = /\+(gzip|zstd)$/.exec(layer.mediaType)?.[1];
  if (!compression) return data;
  try {
    return compression === "gzip" ? gunzipSync(data) : zstdDecompressSync(data);
  } catch (e) {
    throw new InputError(`${layout.source}: layer ${layer.digest} is not the ${compression} data its media type says (${(e as Error).message})`);
  }
}

/** The entries of each layer's tar, all layers in order; a layer that is no tar is named. */
export async function layerEntries(layout: LayoutReader, image: ReadImage): Promise<ReadEntry[]> {
  const { readTar } = await import("./tar-read.ts");
  const layers = image.layers.map((layer, i) =>
    readTar(layer).catch((e: unknown) => {
      throw new InputError(`${layout.source}: layer ${i} of image ${image.manifestDigest} is not a tar (${(e as Error).message})`);
    }),
  );
  return (await Promise.all(layers)).flat();
}

/**
 * What index.json lists that is an image: not cosign's signatures (tagged sha256-<hex>.sig) stored beside
 * it nor referrers (signatures and attestations, listed with their artifactType).
 */
export function layoutImages(layout: LayoutReader): Descriptor[] {
  return layout.index.manifests.filter((m) => !m.artifactType && !m.annotations?.[REF_NAME_ANNOTATION]?.endsWith(".sig"));
}

/** One descriptor per image: a layout may tag the same image more than once. */
export function distinctImages(descriptors: readonly Descriptor[]): Descriptor[] {
  return descriptors.filter((d, i) => descriptors.findIndex((e) => e.digest === d.digest) === i);
}

export interface ReadImage {
  /** what the layout names: the image's index, or its manifest */
  digest: string;
  manifestDigest: string;
  config: Record<string, unknown>;
  /** each layer, uncompressed */
  layers: Buffer[];
}

/** The architectures (OCI names) the layout's only image is for: its index's platforms, or its config's. */
export async function imageArchitectures(layout: LayoutReader): Promise<string[]> {
  const roots = distinctImages(layoutImages(layout));
  if (roots.length !== 1) return [];
  const root = roots[0] as Descriptor;
  const json = parseObject(`${layout.source}: blob ${root.digest}`, await layout.blob(root));
  if (root.mediaType === MEDIA_TYPES.index) return descriptorsAt(`${layout.source}: index ${root.digest}`, json, "manifests").flatMap((m) => (m.platform ? [m.platform.architecture] : []));
  const config = parseObject(`${layout.source}: config`, await layout.blob(descriptorAt(`${layout.source}: manifest ${root.digest}`, "config", json.config)));
  return typeof config.architecture === "string" ? [config.architecture] : [];
}

/**
 * The image tagged `ref` (or the only one) for `architecture`, following an index if there is one. An
 * architecture asked for is checked against the image's config: an image for another one is refused.
 */
export async function readImage(layout: LayoutReader, options: { ref?: string; architecture?: string } = {}): Promise<ReadImage> {
  const { ref, architecture = DEFAULT_ARCH.oci } = options;
  const candidates = distinctImages(ref ? layout.index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] === ref) : layoutImages(layout));
  if (candidates.length !== 1) {
    const tags = layout.index.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION]).filter(Boolean);
    throw new InputError(`${layout.source}: ${ref ? `no image tagged '${ref}'` : "holds more than one image; name one"} (tags: ${tags.join(", ") || "none"})`);
  }
  let descriptor = candidates[0] as Descriptor;
  const digest = descriptor.digest;
  const json = async (d: Descriptor) => parseObject(`${layout.source}: blob ${d.digest}`, await layout.blob(d));
  if (descriptor.mediaType === MEDIA_TYPES.index) {
    const manifests = descriptorsAt(`${layout.source}: index ${descriptor.digest}`, await json(descriptor), "manifests");
    const match = manifests.find((m) => m.platform?.architecture === architecture) ?? (manifests.length === 1 ? manifests[0] : undefined);
    if (!match) throw new InputError(`${layout.source}: no image for architecture ${architecture}`);
    descriptor = match;
  }
  const manifest = await json(descriptor);
  const where = `${layout.source}: manifest ${descriptor.digest}`;
  const config = await json(descriptorAt(where, "config", manifest.config));
  if (options.architecture && typeof config.architecture === "string" && config.architecture !== options.architecture) {
    throw new InputError(`${layout.source}: an image for ${config.architecture}, not ${options.architecture}; give the image built for ${options.architecture}`);
  }
  const layers = await Promise.all(descriptorsAt(where, manifest, "layers").map(async (l) => uncompressed(layout, l, await layout.blob(l))));
  return { digest, manifestDigest: descriptor.digest, config, layers };
}
