/** Where a package's source comes from, pinned so that it can be verified before use. */
export type SourcePin =
  /** a file of a Debian source package, fetched with `apt-get source --download-only` */
  | { kind: "debian"; package: string; version: string; file: string; sha256: string; patches?: DebianPatches; only?: string[] }
  /** a file installed on the host by a Debian package (e.g. /usr/src/linux-source-6.1.tar.xz) */
  | { kind: "host-file"; path: string; sha256: string; only?: string[] }
  /** a directory of files kept next to the package definition */
  | { kind: "local"; path: string };

/** A pin of a file of a Debian source package. */
export type DebianPin = Extract<SourcePin, { kind: "debian" }>;

/** The Debian patch series of a pinned source package, as a pin of its own (a file of the same package). */
export function patchSeriesPin(pin: DebianPin): DebianPin | undefined {
  return pin.patches ? { kind: "debian", package: pin.package, version: pin.version, file: pin.patches.file, sha256: pin.patches.sha256 } : undefined;
}

/** An archive pin's `only`: the paths (under its top directory) that are unpacked, when not all of it is needed. */
export const ARCHIVE_MEMBER = /^[A-Za-z0-9_.+-]+(\/[A-Za-z0-9_.+-]+)*$/;

/** Debian's own patch series of the source package (its debian.tar.*), applied in series order. */
export interface DebianPatches {
  file: string;
  sha256: string;
  /** the vulnerabilities the series resolves, for the SBOM and the vulnerability gate */
  fixes: string[];
}

export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export function describeSource(pin: SourcePin): string {
  switch (pin.kind) {
    case "debian":
      return `Debian source package ${pin.package}=${pin.version}, file ${pin.file}`;
    case "host-file":
      return pin.path;
    case "local":
      return `local directory ${pin.path}`;
  }
}
