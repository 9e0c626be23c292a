import { relative } from "node:path";
import { createHash } from "node:crypto";
import type { SourcePin } from "../sources/pin.ts";

/** Something the image is made of: a package, the kernel, an out-of-tree module, bronze itself. */
export interface SbomComponent {
  /** unique within the document, e.g. "package-musl" */
  id: string;
  name: string;
  version: string;
  /** an SPDX license expression */
  license: string;
  kind: "package" | "kernel" | "kernel-module" | "image" | "extension";
  description: string;
  purl?: string;
  cpe?: string;
  /** where its sources came from, each with its sha256 */
  sources: { location: string; sha256: string }[];
  /** changes applied to those sources, with what each resolves */
  patches?: { file: string; sha256: string; fixes: string[]; upstream?: string }[];
  /** the components whose programs link it statically: it has no files of its own in the image, but is in theirs */
  linkedInto?: string[];
}

export interface SbomFile {
  /** path in the image root, without a leading slash */
  path: string;
  /** id of the component that installed it */
  owner: string;
  sha256: string;
  sha1: string;
  /** for a symlink: its target (the checksums are of the target text) */
  linkTarget?: string;
}

export interface SbomInput {
  image: { name: string; version: string; arch: string; epoch: number; toolVersion: string };
  components: SbomComponent[];
  files: SbomFile[];
}

/** Where the SBOM lives in the rootfs and the installer. */
export const SBOM_DIR = "usr/share/spdx";
export const sbomFileNames = (profile: string) => ({ spdx: `${profile}.spdx.json`, cyclonedx: `${profile}.cdx.json` });
/** The SBOM of a custom image's extensions, beside its base's. */
export const extensionSbomFileNames = (profile: string) => sbomFileNames(`${profile}.extensions`);

export function fileChecksums(data: Buffer | string): { sha256: string; sha1: string } {
  return { sha256: createHash("sha256").update(data).digest("hex"), sha1: createHash("sha1").update(data).digest("hex") };
}

/**
 * A source pin as SBOM facts: a location that names no mirror and no machine's directory (local sources
 * by their path in the repository), its checksum, and a purl for Debian sources.
 */
export function describePin(pin: SourcePin, projectRoot: string, localDigest?: string): { location: string; sha256: string; purl?: string } {
  switch (pin.kind) {
    case "debian":
      return { location: `Debian source package ${pin.package} ${pin.version}, file ${pin.file}`, sha256: pin.sha256, purl: debianPurl(pin.package, pin.version) };
    case "host-file":
      return { location: pin.path, sha256: pin.sha256 };
    case "local":
      if (!localDigest) throw new Error(`internal: no digest for the local source ${pin.path}`);
      return { location: `bronze repository, ${relative(projectRoot, pin.path)}`, sha256: localDigest };
  }
}

/** A Debian source package's purl; the version percent-encoded as the purl spec asks (1:2.66-4+deb12u3: 1%3A2.66-4%2Bdeb12u3). */
export const debianPurl = (sourcePackage: string, version: string): string => `pkg:deb/debian/${sourcePackage}@${encodeURIComponent(version)}?arch=source`;

/** A name-based UUID (RFC 4122 layout, version 5 style, from sha256) so documents never carry random ids. */
export function derivedUuid(seed: string): string {
  const h = createHash("sha256").update(seed).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

export function isoTime(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.000Z$/, "Z");
}

/** A digest of everything the document states, to derive its namespace and serial from. */
export function contentDigest(input: SbomInput): string {
  return createHash("sha256").update(JSON.stringify(input)).digest("hex");
}
