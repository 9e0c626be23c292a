import { archNamed } from "../core/arch.ts";
import { buildImage, buildIndex, type Blob, type Image } from "./image.ts";
import { layoutFiles, layoutTar } from "./layout.ts";
import { parentDirectories, writeTar, type TarEntry } from "./tar.ts";


export interface InstallerInput {
  /** per architecture: the files that go to usr/install/<oci arch>/ */
  arches: { arch: string; files: { name: string; data: Buffer; mode?: number }[] }[];
  epoch: number;
  /** org.opencontainers.image.* values: version, revision, source (created comes from epoch) */
  version: string;
  revision?: string;
  source?: string;
  /** the tag in the layout's index.json */
  refName: string;
  /** the image profile: annotated, and a second tag <refName>-<first 12 hex digits of its ID> */
  profile?: { name: string; id: string };
}

export interface InstallerImage {
  index: Blob;
  images: Image[];
  /** files of the OCI image layout directory */
  files: { path: string; data: Buffer }[];
  /** the same layout as one tar */
  tar: Buffer;
}

export const PROFILE_NAME_ANNOTATION = "dev.bronze.profile.name";
export const PROFILE_ID_ANNOTATION = "dev.bronze.profile.id";

/** The tag that names an image by its profile's definition: the same profile ID, the same tag. */
export function profileTag(version: string, profileId: string): string {
  return `${version}-${profileId.slice(0, 12)}`;
}

/**
 * The installer image: per architecture one deterministic layer holding
 * usr/install/<arch>/, with an index over the architectures. Same inputs, same digests.
 */
export function installerImage(input: InstallerInput): InstallerImage {
  const created = new Date(input.epoch * 1000).toISOString().replace(/\.000Z$/, "Z");
  const annotations: Record<string, string> = {
    "org.opencontainers.image.created": created,
    "org.opencontainers.image.version": input.version,
    ...(input.revision ? { "org.opencontainers.image.revision": input.revision } : {}),
    ...(input.source ? { "org.opencontainers.image.source": input.source } : {}),
    "org.opencontainers.image.title": "bronze installer",
    ...(input.profile ? { [PROFILE_NAME_ANNOTATION]: input.profile.name, [PROFILE_ID_ANNOTATION]: input.profile.id } : {}),
  };
  const images = input.arches.map(({ arch, files }) => {
    const dir = `usr/install/${archNamed(arch).oci}`;
    const fileEntries: TarEntry[] = files.map((f) => ({ path: `${dir}/${f.name}`, type: "file", mode: f.mode ?? 0o644, data: f.data }));
    const layerTar = writeTar([...parentDirectories(fileEntries.map((e) => e.path)), ...fileEntries], input.epoch);
    return buildImage({ platform: { architecture: archNamed(arch).oci, os: "linux" }, layerTar, created, annotations });
  });
  const index = buildIndex(images, annotations);
  const files = layoutFiles(
    index,
    images.flatMap((i) => [i.manifest, ...i.blobs]),
    input.refName,
    input.profile ? [{ root: index, refName: profileTag(input.refName, input.profile.id) }] : [],
  );
  return { index, images, files, tar: layoutTar(files, input.epoch) };
}
