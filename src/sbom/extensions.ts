import type { ReadEntry } from "../oci/tar-read.ts";
import { imageComponent } from "./components.ts";
import { fileChecksums, type SbomComponent, type SbomFile, type SbomInput } from "./model.ts";

/** What the extensions SBOM says of one extension: its manifest, origin and the files of its layer. */
export interface ExtensionPart {
  name: string;
  version: string;
  description: string;
  /** where it came from, and the digest that pins it (an image's index digest, or a tree's content digest) */
  source: { location: string; sha256: string };
  /** the entries of its layer (paths in the image root) */
  entries: readonly ReadEntry[];
}

/**
 * The SBOM of what a custom image layers over its base (whose own SBOM is in its rootfs): each
 * extension as a component with every file and symlink of its layer.
 */
export function extensionsSbom(image: SbomInput["image"] & { base: string }, extensions: readonly ExtensionPart[]): SbomInput {
  const described = imageComponent(image.name, image.version, `system extensions of bronze image ${image.name}, layered over the ${image.base} image (its SBOM is the base's)`);
  const components = extensions.map(
    (e): SbomComponent => ({ id: `extension-${e.name}`, name: e.name, version: e.version, license: "NOASSERTION", kind: "extension", description: e.description, sources: [e.source] }),
  );
  const files = (owner: string, entries: readonly ReadEntry[]): SbomFile[] =>
    entries
      .filter((e) => e.type === "file" || e.type === "symlink")
      .map((e) => (e.type === "symlink" ? { path: e.path, owner, ...fileChecksums(e.target ?? ""), linkTarget: e.target ?? "" } : { path: e.path, owner, ...fileChecksums(e.data ?? Buffer.alloc(0)) }));
  return {
    image: { name: image.name, version: image.version, arch: image.arch, epoch: image.epoch, toolVersion: image.toolVersion },
    components: [described, ...components],
    files: extensions.flatMap((e) => files(`extension-${e.name}`, e.entries)),
  };
}
