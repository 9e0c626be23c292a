import { basename, dirname, join } from "node:path";
import { FieldReader, YamlFile } from "../core/yamlfile.ts";
import { SHA256_PATTERN, type SourcePin } from "../sources/pin.ts";

/**
 * userland: built in its own sandbox, installed into the rootfs;
 * kernel-module: an out-of-tree module, built against the kernel tree inside
 * the kernel build (while its ephemeral key exists) and signed with it.
 */
export type PackageKind = "userland" | "kernel-module";
const KINDS: readonly PackageKind[] = ["userland", "kernel-module"];

/** A package definition: pkgs/<name>/pkg.yaml. */
export interface PackageDef {
  name: string;
  kind: PackageKind;
  version: string;
  license: string;
  description: string;
  /** the package's directory (pkg.yaml and local sources) */
  dir: string;
  file: string;
  sources: SourcePin[];
  /** applied in order (patch -p1) to the unpacked sources before the build */
  patches: PackagePatch[];
  /** packages whose outputs are visible at /deps/<name> during the build */
  dependencies: string[];
  steps: { prepare: string; build: string; install: string };
  /** time stamp for the build, from the source release (reproducible builds) */
  sourceDateEpoch: number;
}

/** A change to a package's sources, kept in its directory and pinned by digest; what it fixes goes into the SBOM. */
export interface PackagePatch {
  /** its path in the package directory, as pkg.yaml gives it */
  file: string;
  path: string;
  sha256: string;
  /** the vulnerabilities it resolves (CVE-…), for the SBOM and the vulnerability gate */
  fixes: string[];
  /** the upstream commit it carries, if it is a backport */
  upstream?: string;
}

const NAME = /^[a-z0-9][a-z0-9+.-]*$/;
const TOP_KEYS = ["name", "kind", "version", "license", "description", "sources", "patches", "dependencies", "steps", "sourceDateEpoch"];
const INSIDE = /^(?!\/)(?!.*(^|\/)\.\.(\/|$)).+$/;

function readPatch(f: FieldReader, value: unknown, at: (string | number)[], pkgDir: string): PackagePatch {
  const patch = f.mapping(value, at);
  f.onlyKeys(patch, at, ["file", "sha256", "fixes", "upstream"]);
  const file = f.string(patch.file, [...at, "file"], INSIDE, "a path inside the package directory");
  const upstream = patch.upstream === undefined ? undefined : f.string(patch.upstream, [...at, "upstream"], /^[0-9a-f]{40}$/, "a 40-digit git commit");
  return {
    file,
    path: join(pkgDir, file),
    sha256: f.string(patch.sha256, [...at, "sha256"], SHA256_PATTERN, "64 lowercase hex digits"),
    fixes: f.list(patch.fixes, [...at, "fixes"]).map((id, i) => f.string(id, [...at, "fixes", i], /^[A-Z]+-[0-9A-Za-z-]+$/, "an advisory id such as CVE-2025-26519")),
    ...(upstream ? { upstream } : {}),
  };
}
const STEP_KEYS = ["prepare", "build", "install"];

function readSource(f: FieldReader, value: unknown, at: (string | number)[], pkgDir: string): SourcePin {
  const src = f.mapping(value, at);
  if ("debian" in src) {
    f.onlyKeys(src, at, ["debian", "version", "file", "sha256"]);
    return {
      kind: "debian",
      package: f.string(src.debian, [...at, "debian"], NAME),
      version: f.string(src.version, [...at, "version"]),
      file: f.string(src.file, [...at, "file"], /^[^/]+$/, "a file name, no directory"),
      sha256: f.string(src.sha256, [...at, "sha256"], SHA256_PATTERN, "64 lowercase hex digits"),
    };
  }
  if ("path" in src) {
    f.onlyKeys(src, at, ["path"]);
    const rel = f.string(src.path, [...at, "path"], INSIDE, "a path inside the package directory");
    return { kind: "local", path: join(pkgDir, rel) };
  }
  throw f.file.error(at, "a source needs either 'debian' (with version, file, sha256) or 'path'");
}

export async function loadPackage(file: string): Promise<PackageDef> {
  const yaml = await YamlFile.load(file);
  const f = new FieldReader(yaml);
  const top = f.mapping(yaml.data, []);
  f.onlyKeys(top, [], TOP_KEYS);
  const dir = dirname(file);
  const name = f.string(top.name, ["name"], NAME, "lowercase letters, digits, '+', '.', '-'");
  if (name !== basename(dir)) {
    throw yaml.error(["name"], `name '${name}' must match the package directory '${basename(dir)}'`);
  }
  const kind = (top.kind === undefined ? "userland" : f.string(top.kind, ["kind"])) as PackageKind;
  if (!KINDS.includes(kind)) throw yaml.error(["kind"], `kind '${kind}' is not known; known: ${KINDS.join(", ")}`);
  if (kind === "kernel-module") {
    if (top.steps !== undefined) throw yaml.error(["steps"], "a kernel-module package has no steps: bronze builds it with the kernel's Kbuild (give a Kbuild file in its sources)");
    if (top.dependencies !== undefined) throw yaml.error(["dependencies"], "a kernel-module package builds against the kernel only; remove 'dependencies'");
  }
  const steps = kind === "kernel-module" ? {} : f.mapping(top.steps, ["steps"]);
  f.onlyKeys(steps, ["steps"], STEP_KEYS);
  const step = (key: string): string => (steps[key] === undefined ? "" : f.string(steps[key], ["steps", key]));
  if (kind === "userland" && !steps.install) throw yaml.error(["steps"], "'steps.install' is required: it puts the package's files into $OUT");
  return {
    name,
    kind,
    version: f.string(top.version, ["version"]),
    license: f.string(top.license, ["license"]),
    description: f.optionalString(top.description, ["description"]) ?? "",
    dir,
    file,
    sources: f.list(top.sources, ["sources"]).map((s, i) => readSource(f, s, ["sources", i], dir)),
    patches: f.list(top.patches, ["patches"]).map((p, i) => readPatch(f, p, ["patches", i], dir)),
    dependencies: f.list(top.dependencies, ["dependencies"]).map((d, i) => f.string(d, ["dependencies", i], NAME)),
    steps: { prepare: step("prepare"), build: step("build"), install: step("install") },
    sourceDateEpoch: f.integer(top.sourceDateEpoch, ["sourceDateEpoch"]),
  };
}
