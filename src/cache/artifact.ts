import { zstdCompressSync } from "node:zlib";
import { makeBlob, manifestBlob, type Blob } from "../oci/image.ts";
import { writeTar, type TarEntry } from "../oci/tar.ts";

/** A cache entry as an OCI artifact: the record as config, the output tree as one layer. */
export const CACHE_MEDIA_TYPES = {
  artifact: "application/vnd.bronze.cache.entry.v1",
  record: "application/vnd.bronze.cache.record.v1+json",
  tree: "application/vnd.bronze.cache.tree.v1.tar+zstd",
} as const;

export const STEP_ANNOTATION = "dev.bronze.cache.step";
export const KEY_ANNOTATION = "dev.bronze.cache.key";

export interface CacheArtifact {
  manifest: Blob;
  record: Blob;
  tree: Blob;
}

/**
 * The artifact of one entry: tagged by its input key in the registry. The tree's tar is reproducible
 * (sorted, owner 0, time 0), so the same entry always makes the same digests.
 */
export function cacheArtifact(key: string, step: string, recordJson: Buffer, tree: readonly TarEntry[]): CacheArtifact {
  const record = makeBlob(CACHE_MEDIA_TYPES.record, recordJson);
  const treeBlob = makeBlob(CACHE_MEDIA_TYPES.tree, zstdCompressSync(writeTar(tree, 0)));
  const manifest = manifestBlob(record.descriptor, [treeBlob.descriptor], { artifactType: CACHE_MEDIA_TYPES.artifact, annotations: { [STEP_ANNOTATION]: step, [KEY_ANNOTATION]: key } });
  return { manifest, record, tree: treeBlob };
}

interface ManifestShape {
  artifactType?: string;
  config?: { mediaType?: string; digest?: string; size?: number };
  layers?: { mediaType?: string; digest?: string; size?: number }[];
  annotations?: Record<string, string>;
}

/** What a pulled manifest must be to be taken as the entry for `key`; the reason when it is not. */
export function readCacheManifest(data: Buffer, key: string): { record: { digest: string; size: number }; tree: { digest: string; size: number } } {
  const manifest = JSON.parse(data.toString("utf8")) as ManifestShape;
  const [layer, ...more] = manifest.layers ?? [];
  const config = manifest.config;
  if (manifest.artifactType !== CACHE_MEDIA_TYPES.artifact) throw new Error(`artifact type ${manifest.artifactType ?? "(none)"} is not a bronze cache entry`);
  if (manifest.annotations?.[KEY_ANNOTATION] !== key) throw new Error(`it is the entry of key ${manifest.annotations?.[KEY_ANNOTATION] ?? "(none)"}, not of ${key}`);
  if (config?.mediaType !== CACHE_MEDIA_TYPES.record || !layer || more.length || layer.mediaType !== CACHE_MEDIA_TYPES.tree) throw new Error("its config and layers are not a record and one tree");
  const descriptor = (d: { digest?: string; size?: number }) => {
    if (!d.digest || !/^sha256:[0-9a-f]{64}$/.test(d.digest) || !Number.isSafeInteger(d.size)) throw new Error("a descriptor has no valid digest or size");
    return { digest: d.digest, size: d.size! };
  };
  return { record: descriptor(config), tree: descriptor(layer) };
}
