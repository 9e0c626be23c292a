import { cp, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { ownedWorkDir } from "../core/ownership.ts";
import { crossPrefix, crossTools, HOST_ARCH, type Arch } from "../core/arch.ts";
import type { BuildContext } from "../core/context.ts";
import { run } from "../core/exec.ts";
import { InputError } from "../core/errors.ts";
import { recipeDigest, sha256File } from "../core/hash.ts";
import { runSandboxed, type Mount } from "../core/sandbox.ts";
import { cachedStep } from "../core/step.ts";
import type { StoreEntry } from "../core/store.ts";
import { toolVersions } from "../core/tools.ts";
import { fetchSource, pinnedDigest, sourceName, type VerifiedSource } from "../sources/fetch.ts";
import { patchSeriesPin, type SourcePin } from "../sources/pin.ts";
import type { PackageDef } from "./schema.ts";

/** A built package: its installed files (a tree rooted at /) in the store. */
export interface PackageArtifact {
  kind: "package";
  name: string;
  version: string;
  license: string;
  key: string;
  /** the package's files, laid out as they are installed */
  dir: string;
  sources: { what: string; digest: string }[];
  /** what was applied to the sources, each verified against its pin */
  patches: { file: string; sha256: string; fixes: string[]; upstream?: string }[];
}

/** Each patch of the package, its content checked against the digest pkg.yaml pins. */
export async function verifiedPatches(def: PackageDef): Promise<PackageDef["patches"]> {
  return Promise.all(
    def.patches.map(async (p, i) => {
      const actual = await sha256File(p.path).catch(() => {
        throw new InputError(`${def.file}: patches[${i}]: ${p.file} cannot be read; put it in ${def.dir}`);
      });
      if (actual !== p.sha256) throw new InputError(`${def.file}: patches[${i}]: ${p.file} has sha256 ${actual}, not the pinned ${p.sha256}; if the change is yours, pin the new digest`);
      return p;
    }),
  );
}

const BUILD_TOOLS = ["gcc", "make", "ld"];

/** What a package's step, and so its cache entry, is named before the package's name. */
const PACKAGE_STEP = "package ";

/** Whether a cache entry is a package's. */
export const isPackageEntry = (entry: StoreEntry): boolean => entry.record.step.startsWith(PACKAGE_STEP);

/** What was applied to a package's sources, as the SBOM records it: Debian's patch series first, then its own patches. */
export function patchRecords(def: PackageDef): PackageArtifact["patches"] {
  const series = def.sources.flatMap((pin) => (pin.kind === "debian" && pin.patches ? [{ file: `${pin.patches.file}: debian/patches/series`, sha256: pin.patches.sha256, fixes: pin.patches.fixes }] : []));
  return [...series, ...def.patches.map(({ file, sha256, fixes, upstream }) => ({ file, sha256, fixes, ...(upstream ? { upstream } : {}) }))];
}

/** Applies Debian's patch series (debian/patches/series of a verified debian.tar.*) to the tree, in order. */
async function applyDebianSeries(tarball: VerifiedSource, tree: string, scratch: string, logFile: string): Promise<number> {
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  await run("tar", ["-xf", tarball.path, "-C", scratch, "--no-same-owner"], { logFile });
  const series = await readFile(join(scratch, "debian", "patches", "series"), "utf8").catch(() => {
    throw new InputError(`${tarball.path}: no debian/patches/series; it is not a patch series to apply`);
  });
  let applied = 0;
  for (const line of series.split("\n")) {
    const [name, ...options] = line.replace(/#.*/, "").trim().split(/\s+/);
    if (!name) continue;
    const strip = options.find((o) => /^-p\d$/.test(o)) ?? "-p1";
    await run("patch", [strip, "--forward", "--batch", "--no-backup-if-mismatch", "-d", tree, "-i", join(scratch, "debian", "patches", name)], { logFile });
    applied++;
  }
  await rm(scratch, { recursive: true, force: true });
  return applied;
}

/** Unpacks an archive (dropping its top directory) or copies a local source directory. */
export async function extractSource(source: VerifiedSource, into: string, logFile: string): Promise<void> {
  if (source.pin.kind === "local") {
    await cp(source.path, into, { recursive: true });
    return;
  }
  // `only`: the archive's top directory, then each path (* matches no slash: the top directory alone)
  const only = source.pin.only ? ["--wildcards", "--no-wildcards-match-slash", ...source.pin.only.map((m) => `*/${m}`)] : [];
  await run("tar", ["-xf", source.path, "-C", into, "--strip-components=1", "--no-same-owner", ...only], { logFile });
}

/**
 * What a recipe is told of the architecture it builds for: bronze's name, GNU's triplet, Linux's ARCH=,
 * and the toolchain's prefix (empty on the host's own: `${CROSS_COMPILE:+--host=$TARGET_TRIPLET}` is
 * configure's option for a cross build and nothing otherwise).
 */
export function targetEnv(arch: Arch): Record<string, string> {
  return { TARGET_ARCH: arch.name, TARGET_TRIPLET: arch.gnuTriplet, KERNEL_ARCH: arch.kernel, CROSS_COMPILE: crossPrefix(arch) };
}

/** The tools whose versions key a package of `arch`: the host's, and the cross toolchain's too. */
const buildTools = (arch: Arch, patched: boolean): string[] => [...BUILD_TOOLS, ...crossTools(arch), ...(patched ? ["patch"] : [])];

/**
 * Builds one package for `arch` in a sandbox with no network, seeing only its own sources
 * (at /build), its declared dependencies (at /deps/<name>, built for the same arch) and its output (/out).
 */
export async function buildPackage(
  def: PackageDef,
  deps: ReadonlyMap<string, PackageArtifact>,
  arch: Arch,
  ctx: BuildContext,
): Promise<PackageArtifact> {
  const logFile = join(ctx.logDir, `pkg-${def.name}.log`);
  // the key takes the pinned digests; the sources are fetched (and verified) only to build the package
  const sourceDigests = await Promise.all(def.sources.map(pinnedDigest));
  const patches = await verifiedPatches(def);
  const seriesPins = def.sources.flatMap((pin) => (pin.kind === "debian" ? (patchSeriesPin(pin) ?? []) : []));
  const fetchAll = (pins: readonly SourcePin[]) => Promise.all(pins.map((pin) => fetchSource(pin, { cacheDir: ctx.cacheDir, definedIn: def.file, logFile })));
  const depArtifacts = def.dependencies.map((name) => {
    const dep = deps.get(name);
    if (!dep) throw new Error(`internal: dependency ${name} of ${def.name} was not built first`);
    return dep;
  });
  const inputs = {
    step: "package",
    recipe: await recipeDigest(import.meta.url, new URL("../core/sandbox.ts", import.meta.url).href),
    name: def.name,
    version: def.version,
    arch: arch.name,
    steps: def.steps,
    sourceDateEpoch: def.sourceDateEpoch,
    sources: sourceDigests,
    // what of each archive is unpacked, when not all of it (the key of every other package stays as it was)
    ...(def.sources.some((p) => p.kind !== "local" && p.only) ? { only: def.sources.map((p) => (p.kind !== "local" && p.only) || null) } : {}),
    patches: patches.map((p) => p.sha256),
    debianSeries: seriesPins.map((pin) => pin.sha256),
    dependencies: Object.fromEntries(depArtifacts.map((d) => [d.name, d.key])),
    // patch's version keys only the packages it patches
    tools: await toolVersions(buildTools(arch, patches.length > 0 || seriesPins.length > 0)),
  };
  const produce = async (outDir: string, key: string) => {
    await rm(logFile, { force: true });
    const [sources, debianSeries] = await Promise.all([fetchAll(def.sources), fetchAll(seriesPins)]);
    const work = await ownedWorkDir(join(ctx.workDir, "pkgs"), `${def.name}-${key.slice(0, 12)}`);
    await mkdir(join(work, "build"), { recursive: true });
    for (const source of sources) await extractSource(source, join(work, "build"), logFile);
    for (const series of debianSeries) await applyDebianSeries(series, join(work, "build"), join(work, "debian"), logFile);
    for (const patch of patches) await run("patch", ["-p1", "--forward", "--batch", "--no-backup-if-mismatch", "-d", join(work, "build"), "-i", patch.path], { logFile });
    const mounts: Mount[] = [
      { host: join(work, "build"), at: "/build", writable: true },
      { host: outDir, at: "/out", writable: true },
      ...depArtifacts.map((d) => ({ host: d.dir, at: `/deps/${d.name}` })),
    ];
    const env = {
      OUT: "/out",
      JOBS: String(ctx.jobs),
      SOURCE_DATE_EPOCH: String(def.sourceDateEpoch),
      PKG_NAME: def.name,
      PKG_VERSION: def.version,
      ...targetEnv(arch),
    };
    for (const phase of ["prepare", "build", "install"] as const) {
      const script = def.steps[phase];
      if (script) await runSandboxed(script, { mounts, cwd: "/build", env, logFile });
    }
    // kept when a phase fails, to look into
    await rm(work, { recursive: true, force: true });
  };
  return cachedStep(ctx, {
    name: `${PACKAGE_STEP}${def.name}${arch === HOST_ARCH ? "" : ` (${arch.name})`}`,
    inputs,
    produce,
    artifact: (entry) => ({
      kind: "package",
      name: def.name,
      version: def.version,
      license: def.license,
      key: entry.key,
      dir: entry.dir,
      sources: def.sources.map((pin, i) => ({ what: sourceName(pin), digest: sourceDigests[i] ?? "" })),
      patches: patchRecords(def),
    }),
  });
}
