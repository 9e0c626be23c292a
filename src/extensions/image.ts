import { DEFAULT_ARCH } from "../core/arch.ts";
import { InputError } from "../core/errors.ts";
import { buildImage, buildIndex, type Blob } from "../oci/image.ts";
import { layoutFiles, layoutTar } from "../oci/layout.ts";
import { layerEntries, openLayout, readImage, type LayoutReader } from "../oci/layout-read.ts";
import type { ReadEntry } from "../oci/tar-read.ts";
import { readTree } from "../oci/dir-read.ts";
import { toTarEntry, writeTar } from "../oci/tar.ts";
import { parseExtensionManifest } from "./manifest.ts";
import { checkExtension, describeViolation, type ExtensionContent, type PolicyContext } from "./policy.ts";

/** Talos keeps /lib as a link to /usr/lib: what a Talos-built extension puts under lib/ is under usr/lib/ here. */
const talosPath = (path: string) => (path === "lib" || path.startsWith("lib/") ? `usr/${path}` : path);

/**
 * An extension's content from the entries of its image layer (or source directory). `talos`: a Talos-built
 * extension is read (its manifest marked so, its lib/ placed under usr/lib/) for the caller to admit or refuse.
 */
export function extensionContent(where: string, entries: readonly ReadEntry[], options: { talos?: boolean } = {}): ExtensionContent {
  const manifestEntry = entries.find((e) => e.path === "manifest.yaml" && e.type === "file");
  if (!manifestEntry?.data) throw new InputError(`${where}: no manifest.yaml at the top of the extension`);
  const manifest = parseExtensionManifest(`${where}:manifest.yaml`, manifestEntry.data.toString("utf8"), options);
  const stray = entries.filter((e) => e.path !== "" && e.path !== "." && e.path !== "manifest.yaml" && e.path !== "rootfs" && !e.path.startsWith("rootfs/")).map((e) => e.path);
  const content = entries.filter((e) => e.path.startsWith("rootfs/")).map((e) => ({ ...e, path: e.path.slice("rootfs/".length) }));
  return { manifest, entries: manifest.talos ? content.map((e) => ({ ...e, path: talosPath(e.path) })) : content, stray };
}

/** Fails with every violation, each naming the extension, the path and the rule. */
export function enforcePolicy(content: ExtensionContent, context: PolicyContext): void {
  const violations = checkExtension(content, context);
  if (violations.length) {
    throw new InputError(`extension '${content.manifest.name}' breaks the content policy:\n${violations.map((v) => `  ${describeViolation(v)}`).join("\n")}`);
  }
}

export interface ExtensionImage {
  content: ExtensionContent;
  index: Blob;
  files: { path: string; data: Buffer }[];
  tar: Buffer;
}

/** `bronze extension build DIR`: checks the policy, then writes a reproducible OCI image of it. */
export async function buildExtensionImage(dir: string, options: { epoch: number; osVersion: string; arch?: string }): Promise<ExtensionImage> {
  // special files are read too: the policy names them before anything is written
  const entries = await readTree(dir).catch((e: NodeJS.ErrnoException) => {
    throw new InputError(`${dir}: cannot read the extension directory (${e.code ?? e.message})`);
  });
  const content = extensionContent(dir, entries);
  enforcePolicy(content, { osVersion: options.osVersion });
  return extensionImage(content, entries, options);
}

/** A reproducible OCI image of an extension whose layer holds `entries` (manifest.yaml and rootfs/). */
export function extensionImage(content: ExtensionContent, entries: readonly ReadEntry[], options: { epoch: number; arch?: string }): ExtensionImage {
  const tarEntries = entries.map(toTarEntry);
  const created = new Date(options.epoch * 1000).toISOString().replace(/\.000Z$/, "Z");
  const annotations = {
    "org.opencontainers.image.created": created,
    "org.opencontainers.image.title": content.manifest.name,
    "org.opencontainers.image.version": content.manifest.version,
    "org.opencontainers.image.description": content.manifest.description,
    "org.opencontainers.image.authors": content.manifest.author,
  };
  const image = buildImage({ platform: { architecture: options.arch ?? DEFAULT_ARCH.oci, os: "linux" }, layerTar: writeTar(tarEntries, options.epoch), created, annotations });
  const index = buildIndex([image], annotations);
  const files = layoutFiles(index, [image.manifest, ...image.blobs], content.manifest.version);
  return { content, index, files, tar: layoutTar(files, options.epoch) };
}

/** Reads an extension from an OCI layout (directory or tar): its manifest and content, digests verified; for `architecture` when given (else the only one). */
export async function loadExtension(source: string | LayoutReader, options: { ref?: string; talos?: boolean; architecture?: string } = {}): Promise<ExtensionContent & { manifestDigest: string }> {
  const layout = typeof source === "string" ? await openLayout(source) : source;
  const image = await readImage(layout, { ref: options.ref, ...(options.architecture ? { architecture: options.architecture } : {}) });
  const entries = await layerEntries(layout, image);
  return { ...extensionContent(layout.source, entries, { talos: options.talos }), manifestDigest: image.manifestDigest };
}
