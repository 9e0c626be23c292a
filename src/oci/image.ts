import { createHash } from "node:crypto";

/** gzip at level 9, with no name or time in its header: the same data, the same bytes. zlib loads on first use (a push starts without it). */
export const gzip = (data: Buffer): Buffer => process.getBuiltinModule("node:zlib").gzipSync(data, { level: 9 });

export const MEDIA_TYPES = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

export interface Platform {
  architecture: string;
  os: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  /** what a referrer is (OCI 1.1), in an index of referrers */
  artifactType?: string;
}

/** Content and the descriptor that names it. */
export interface Blob {
  descriptor: Descriptor;
  data: Buffer;
}

export function digestOf(data: Buffer): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export function makeBlob(mediaType: string, data: Buffer, extra: Partial<Pick<Descriptor, "platform" | "annotations">> = {}): Blob {
  return { descriptor: { mediaType, digest: digestOf(data), size: data.length, ...extra }, data };
}

/** An image manifest (OCI 1.1) of a config and layers; `fields` adds artifactType, annotations or a subject. */
export function manifestBlob(config: Descriptor, layers: readonly Descriptor[], fields: { artifactType?: string; annotations?: Record<string, string>; subject?: Descriptor } = {}, extra: Partial<Pick<Descriptor, "platform">> = {}): Blob {
  return makeBlob(MEDIA_TYPES.manifest, canonicalBytes({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, ...fields, config, layers }), extra);
}

/** JSON with keys in a fixed order (sorted), so that equal content has equal bytes. */
export function canonicalBytes(value: unknown): Buffer {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>)
          .filter(([, x]) => x !== undefined)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([k, x]) => [k, sort(x)]),
      );
    }
    return v;
  };
  return Buffer.from(JSON.stringify(sort(value)));
}

export interface ImageInput {
  platform: Platform;
  /** the uncompressed layer tar (reproducible: see writeTar) */
  layerTar: Buffer;
  /** RFC 3339 time, from SOURCE_DATE_EPOCH */
  created: string;
  annotations: Record<string, string>;
}

export interface Image {
  manifest: Blob;
  /** config and layer */
  blobs: Blob[];
}

/** A single-layer image: gzip with no name and no time in its header, config `created` from the input. */
export function buildImage(input: ImageInput): Image {
  const layer = makeBlob(MEDIA_TYPES.layerGzip, gzip(input.layerTar));
  const config = makeBlob(
    MEDIA_TYPES.config,
    canonicalBytes({
      created: input.created,
      architecture: input.platform.architecture,
      os: input.platform.os,
      config: { Labels: input.annotations },
      rootfs: { type: "layers", diff_ids: [digestOf(input.layerTar)] },
      history: [{ created: input.created, created_by: "bronze build" }],
    }),
  );
  const manifest = manifestBlob(config.descriptor, [layer.descriptor], { annotations: input.annotations }, { platform: input.platform });
  return { manifest, blobs: [config, layer] };
}

/** An image index over the images of each platform. */
export function buildIndex(images: readonly Image[], annotations: Record<string, string>): Blob {
  return makeBlob(
    MEDIA_TYPES.index,
    canonicalBytes({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.index,
      manifests: images.map((i) => i.manifest.descriptor),
      annotations,
    }),
  );
}
