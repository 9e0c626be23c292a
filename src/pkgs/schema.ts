import { basename, dirname, join } from "node:path";
import { FieldReader, YamlFile } from "../core/yamlfile.ts";
import { loadKernelSource, type KernelSource } from "../kernel/source.ts";
import { ARCHIVE_MEMBER, SHA256_PATTERN, type DebianPatches, type SourcePin } from "../sources/pin.ts";
import { BUILD_SYSTEMS, compilerPrelude, helperSteps, type BuildHelper, type BuildSystem } from "./build-systems.ts";

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
  /** the build helper the steps come from, when pkg.yaml names one */
  helper?: BuildHelper;
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
const TOP_KEYS = ["name", "kind", "version", "license", "description", "sources", "patches", "dependencies", "build", "steps", "sourceDateEpoch"];
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
    fixes: f.list(patch.fixes, [...at, "fixes"]).map((id, i) => f.string(id, [...at, "fixes", i], ADVISORY, "an advisory id such as CVE-2025-26519")),
    ...(upstream ? { upstream } : {}),
  };
}
const STEP_KEYS = ["prepare", "build", "install"];
const ADVISORY = /^[A-Z]+-[0-9A-Za-z-]+$/;

function readDebianPatches(f: FieldReader, value: unknown, at: (string | number)[]): DebianPatches {
  const patches = f.mapping(value, at);
  f.onlyKeys(patches, at, ["file", "sha256", "fixes"]);
  return {
    file: f.string(patches.file, [...at, "file"], /^[^/]+\.debian\.tar\.(xz|gz|bz2)$/, "the source package's NAME_VERSION.debian.tar.xz"),
    sha256: f.string(patches.sha256, [...at, "sha256"], SHA256_PATTERN, "64 lowercase hex digits"),
    fixes: f.list(patches.fixes, [...at, "fixes"]).map((id, i) => f.string(id, [...at, "fixes", i], ADVISORY, "an advisory id such as CVE-2023-2603")),
  };
}

async function readSource(f: FieldReader, value: unknown, at: (string | number)[], pkgDir: string, kernel: () => Promise<KernelSource>): Promise<SourcePin> {
  const src = f.mapping(value, at);
  // unpacking part of a large archive (the kernel's headers need a twentieth of its source)
  const only = src.only === undefined ? {} : { only: f.list(src.only, [...at, "only"]).map((m, i) => {
    const member = f.string(m, [...at, "only", i], ARCHIVE_MEMBER, "a path under the archive's top directory (no wildcards, no '..')");
    if (member.split("/").some((part) => part === "." || part === "..")) throw f.file.error([...at, "only", i], `'${member}' must not name '.' or '..'`);
    return member;
  }) };
  if ("kernel" in src) {
    f.onlyKeys(src, at, ["kernel", "only"]);
    f.string(src.kernel, [...at, "kernel"], /^source$/, "'source': the kernel source kernel/source.yaml pins");
    // the tree's own kernel pin, so that the kernel and what is built from its source never differ
    return { ...(await kernel()).pin, ...only } as SourcePin;
  }
  if ("debian" in src) {
    f.onlyKeys(src, at, ["debian", "version", "file", "sha256", "patches", "only"]);
    return {
      ...only,
      kind: "debian",
      package: f.string(src.debian, [...at, "debian"], NAME),
      version: f.string(src.version, [...at, "version"]),
      file: f.string(src.file, [...at, "file"], /^[^/]+$/, "a file name, no directory"),
      sha256: f.string(src.sha256, [...at, "sha256"], SHA256_PATTERN, "64 lowercase hex digits"),
      ...(src.patches === undefined ? {} : { patches: readDebianPatches(f, src.patches, [...at, "patches"]) }),
    };
  }
  if ("path" in src) {
    f.onlyKeys(src, at, ["path"]);
    const rel = f.string(src.path, [...at, "path"], INSIDE, "a path inside the package directory");
    return { kind: "local", path: join(pkgDir, rel) };
  }
  throw f.file.error(at, "a source needs 'debian' (with version, file, sha256), 'path', or 'kernel: source'");
}

/** pkgs/NAME/pkg.yaml; `kernel: source` is the pin of kernelDir/source.yaml (by default the tree's, ../../kernel). */
export async function loadPackage(file: string, kernelDir = join(dirname(file), "..", "..", "kernel")): Promise<PackageDef> {
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
  const helper = top.build === undefined ? undefined : readHelper(f, top.build);
  if (helper && kind === "kernel-module") throw yaml.error(["build"], "a kernel-module package is built by the kernel's Kbuild; remove 'build'");
  const steps = kind === "kernel-module" || (helper && top.steps === undefined) ? {} : f.mapping(top.steps, ["steps"]);
  f.onlyKeys(steps, ["steps"], STEP_KEYS);
  const step = (key: string): string => (steps[key] === undefined ? "" : f.string(steps[key], ["steps", key]));
  if (kind === "userland" && !helper && !steps.install) throw yaml.error(["steps"], "'steps.install' is required: it puts the package's files into $OUT (or name a build system in 'build')");
  if (helper?.targets.length && !steps.install) {
    throw yaml.error(["build", "targets"], "with build.targets the build system's install is not run: give steps.install to put the targets' files into $OUT");
  }
  if (helper && steps.build !== undefined) {
    throw yaml.error(["steps", "build"], `'build: ${helper.system}' runs the build; put commands for before it in steps.prepare, for after its install in steps.install`);
  }
  const dependencies = f.list(top.dependencies, ["dependencies"]).map((d, i) => f.string(d, ["dependencies", i], NAME));
  const version = f.string(top.version, ["version"]);
  // kernel/source.yaml is read once, when a source names it, for its pin and the version check
  let kernelSource: Promise<KernelSource> | undefined;
  const kernel = () => (kernelSource ??= loadKernelSource(kernelDir));
  const sources = await Promise.all(f.list(top.sources, ["sources"]).map((s, i) => readSource(f, s, ["sources", i], dir, kernel)));
  if (kernelSource) {
    const { version: kernelVersion } = await kernelSource;
    if (kernelVersion !== version) throw yaml.error(["version"], `version ${version} is not the kernel source's ${kernelVersion} (kernel/source.yaml); make it ${kernelVersion}`);
  }
  return {
    name,
    kind,
    version,
    license: f.string(top.license, ["license"]),
    description: f.optionalString(top.description, ["description"]) ?? "",
    dir,
    file,
    sources,
    patches: f.list(top.patches, ["patches"]).map((p, i) => readPatch(f, p, ["patches", i], dir)),
    dependencies,
    steps: helper ? withHelper(helper, dependencies, step("prepare"), step("install")) : { prepare: step("prepare"), build: step("build"), install: step("install") },
    ...(helper ? { helper } : {}),
    sourceDateEpoch: f.integer(top.sourceDateEpoch, ["sourceDateEpoch"]),
  };
}

function readHelper(f: FieldReader, value: unknown): BuildHelper {
  const build = f.mapping(value, ["build"]);
  f.onlyKeys(build, ["build"], ["system", "options", "targets"]);
  const system = f.string(build.system, ["build", "system"]);
  if (!(BUILD_SYSTEMS as readonly string[]).includes(system)) throw f.file.error(["build", "system"], `build system '${system}' is not known; use ${BUILD_SYSTEMS.join(", ")}`);
  const options = f.list(build.options, ["build", "options"]).map((o, i) => {
    const option = typeof o === "number" ? String(o) : f.string(o, ["build", "options", i]);
    if (option.includes("\n")) throw f.file.error(["build", "options", i], "an option is one line");
    return option;
  });
  const targets = f.list(build.targets, ["build", "targets"]).map((t, i) => f.string(t, ["build", "targets", i], /^[A-Za-z0-9_./+-]+$/, "a target name"));
  return { system: system as BuildSystem, options, targets };
}

/** The steps of a helper-built package: the compiler set up in each, its own prepare first and install lines last. */
function withHelper(helper: BuildHelper, dependencies: readonly string[], prepare: string, install: string): PackageDef["steps"] {
  const prelude = compilerPrelude(dependencies);
  const steps = helperSteps(helper);
  return {
    prepare: prepare ? `${prelude}${prepare}` : "",
    build: `${prelude}${steps.build}`,
    install: `${prelude}${steps.install}${install}`,
  };
}
