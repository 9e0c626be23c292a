import { copyFile, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { sourceDateEpoch, sourceRevision } from "../core/epoch.ts";
import { BronzeError, InputError } from "../core/errors.ts";
import { probe, run } from "../core/exec.ts";
import { Store, type StoreEntry } from "../core/store.ts";
import { isPackageEntry } from "../pkgs/build.ts";
import { hasCommand } from "../core/tools.ts";
import { compareFiles, compareTrees, kernelEntryRule, type FileVerdict } from "./trees.ts";
import { BOOT_MEDIA, diskFormatOf, FILES, mediumFile } from "../core/outputs.ts";
import { moveIntoPlace } from "../core/atomic.ts";

/** One build of the pair: where it ran and what differed about its surroundings. */
interface BuildPlace {
  tree: string;
  cacheDir: string;
  hostName: string;
  umask: string;
  env: Record<string, string>;
}

export interface ReproOptions {
  projectRoot: string;
  /** profile name or file */
  profile: string;
  /** the profile's output directory's name under _out/ (outputDirName: its name, and a second arch's) */
  outDirName: string;
  /** build for this architecture (bronze build --arch), not the profile's */
  arch?: string;
  /** the first build takes its cache from here (e.g. what `make` filled) instead of a fresh one */
  firstCache?: string;
  /** keep the work directory even when everything compared equal */
  keep?: boolean;
  log: (line: string) => void;
}

/** A group of compared files: which builds, what was compared. */
export interface ComparisonGroup {
  title: string;
  files: FileVerdict[];
  /** list identical files one by one (the artifacts), not only count them (a package's many files) */
  listIdentical: boolean;
}

export interface ReproResult {
  workDir: string;
  groups: ComparisonGroup[];
  differences: number;
  installerDigests: [string, string];
}

/** Files of a checkout that a build reads: tracked and untracked, minus what .gitignore excludes. */
async function sourceFiles(projectRoot: string): Promise<string[]> {
  const git = await probe("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: projectRoot });
  if (git.exitCode !== 0) throw new InputError(`${projectRoot} is not a git checkout: bronze repro copies the files git knows of`);
  return git.stdout.split("\0").filter(Boolean);
}

/** A copy of the checkout elsewhere; the runtime and dependencies are linked, not copied (they are not inputs of the image). */
async function copyCheckout(projectRoot: string, files: readonly string[], to: string): Promise<void> {
  for (const file of files) {
    const from = join(projectRoot, file);
    const info = await lstat(from).catch(() => undefined);
    if (!info) continue; // deleted but not yet committed
    await mkdir(dirname(join(to, file)), { recursive: true });
    if (info.isSymbolicLink()) await symlink(await readlink(from), join(to, file));
    else await copyFile(from, join(to, file));
  }
  await symlink(join(projectRoot, "node_modules"), join(to, "node_modules"));
  // the Node runtime only: the CLI bundle in .tools/cli is made from this copy's sources, in this copy
  await mkdir(join(to, ".tools"), { recursive: true });
  await symlink(join(projectRoot, ".tools", "node"), join(to, ".tools", "node"));
}

/** Runs bronze in a place: its own host name (a UTS namespace), umask, user, time zone, locale and TMPDIR. */
async function bronzeIn(place: BuildPlace, args: readonly string[], logFile: string): Promise<void> {
  const command = [join(place.tree, "bin", "bronze"), ...args];
  const [file, ...rest] =
    process.getuid?.() === 0
      ? ["unshare", "--uts", "--", "sh", "-c", 'hostname "$1" && umask "$2" && shift 2 && exec "$@"', "sh", place.hostName, place.umask, ...command]
      : ["sh", "-c", 'umask "$1" && shift && exec "$@"', "sh", place.umask, ...command];
  await mkdir(place.env.TMPDIR!, { recursive: true });
  await mkdir(place.env.HOME!, { recursive: true });
  await run(file!, rest, { cwd: place.tree, env: place.env, cleanEnv: true, logFile }).catch((e: Error) => {
    throw new BronzeError(`bronze ${args.join(" ")} failed in ${place.tree}: ${e.message}`);
  });
}

/** The environment a build sees: only what a build may legitimately read, plus what makes this place different. */
function placeEnv(base: NodeJS.ProcessEnv, extra: Record<string, string>): Record<string, string> {
  // where ephemeral keys go (a tmpfs) changes no output, and lets a caller keep its builds' keys apart
  const keep = ["PATH", "TERM", "BRONZE_KEY_DIR"];
  const env: Record<string, string> = { CI: "true" };
  for (const name of keep) if (base[name] !== undefined) env[name] = base[name]!;
  return { ...env, ...extra };
}

const isKernel = (e: StoreEntry) => e.record.step.startsWith("kernel ");

async function installerDigest(outDir: string): Promise<string> {
  const manifest = JSON.parse(await readFile(join(outDir, FILES.manifest), "utf8")) as { installer: { indexDigest: string } };
  return manifest.installer.indexDigest;
}

/** diffoscope's account of each difference, when it is installed (it is optional: the offsets are always given). */
async function explainWithDiffoscope(different: readonly FileVerdict[], into: string, log: (line: string) => void): Promise<void> {
  if (!different.some((f) => f.files) || !(await hasCommand("diffoscope"))) return;
  await mkdir(into, { recursive: true });
  for (const [index, f] of different.entries()) {
    if (!f.files) continue;
    const report = join(into, `${index}-${f.path.replaceAll("/", "_")}.txt`);
    await probe("diffoscope", ["--text", report, ...f.files], { timeoutMs: 600_000 });
    log(`diffoscope on ${f.path}: ${report}`);
  }
}

/** Output files not under the reproducibility promise: the report shows this build's timings. */
const NOT_REPRODUCIBLE = new Set<string>([FILES.report]);

/**
 * The steps both builds made from source (packages, kernel): B's input hashes must all be in A's cache,
 * and each entry must match A's (the kernel's up to its ephemeral key).
 */
async function compareSourceBuilds(fromA: readonly StoreEntry[], fromB: readonly StoreEntry[]): Promise<ComparisonGroup[]> {
  const inA = new Map(fromA.map((e) => [e.key, e]));
  const keyCheck: FileVerdict[] = [];
  const entryGroups: ComparisonGroup[] = [];
  for (const entryB of fromB.filter((e) => isPackageEntry(e) || isKernel(e)).sort((x, y) => x.record.step.localeCompare(y.record.step))) {
    const entryA = inA.get(entryB.key);
    if (!entryA) {
      const sameStep = fromA.filter((e) => e.record.step === entryB.record.step).map((e) => e.key.slice(0, 12));
      keyCheck.push({ path: entryB.record.step, verdict: { status: "different", detail: `input hash ${entryB.key.slice(0, 12)} not in build A's cache (A has ${sameStep.join(", ") || "none"}): the inputs differ` } });
      continue;
    }
    keyCheck.push({ path: entryB.record.step, verdict: { status: "identical" } });
    const rule = isKernel(entryB) ? await kernelEntryRule(entryA.dir, entryB.dir) : undefined;
    entryGroups.push({ title: `${entryB.record.step}: build A vs build B (each built from source)`, files: await compareTrees(entryA.dir, entryB.dir, rule), listIdentical: isKernel(entryB) });
  }
  return [{ title: "input hashes of build B's steps, found in build A's cache", files: keyCheck, listIdentical: false }, ...entryGroups];
}

/** A cache holding B's packages and A's kernel: a build from it remakes everything downstream of them. */
async function cacheAroundFirstKernel(fromA: readonly StoreEntry[], fromB: readonly StoreEntry[], dir: string): Promise<void> {
  const store = new Store(dir);
  const kernelsOfB = new Set(fromB.filter(isKernel).map((e) => e.key));
  for (const entry of [...fromB.filter(isPackageEntry), ...fromA.filter((e) => kernelsOfB.has(e.key))]) await store.adopt(entry);
}

/** Each boot medium as `bronze image <medium>` writes it from each build's installer, in each place (its time zone, locale, user). */
async function compareBootMedia(places: [BuildPlace, BuildPlace], outs: [string, string], work: string, logs: string): Promise<FileVerdict[]> {
  const media: FileVerdict[] = [];
  for (const medium of BOOT_MEDIA) {
    const file = mediumFile(medium);
    const format = diskFormatOf(medium);
    // disks of 256 MiB: the conversions are cheaper, and the size of /var's empty space changes nothing compared
    const command = format ? ["image", "disk", "--format", format, "--size", "256M"] : ["image", medium];
    const made: [string, string] = [join(work, `A-${file}`), join(work, `C-${file}`)];
    for (const [i, name] of (["A", "C"] as const).entries()) {
      await bronzeIn(places[i] as BuildPlace, [...command, "--from", join(outs[i] as string, "installer"), "--out", made[i] as string], join(logs, `${medium}-${name}.log`));
    }
    // the network boot directory file by file
    if (medium === "pxe") media.push(...(await compareTrees(...made)).map((f) => ({ ...f, path: `${file}/${f.path}` })));
    else media.push({ path: file, verdict: await compareFiles(...made), files: made });
  }
  return media;
}

/**
 * Builds a profile twice from two copies of the checkout that differ in path, time, TMPDIR, user, host name,
 * umask, time zone and locale, each with a fresh cache and its own ephemeral module-signing key, and compares:
 * packages byte for byte, kernel and modules with signatures stripped and the certificate masked.
 * Then the second copy builds the image again around the first build's kernel (the one input a key makes
 * different): every artifact, the installer's digest and each boot medium made from it must be byte-identical.
 */
export async function checkReproducible(options: ReproOptions): Promise<ReproResult> {
  const { projectRoot, log } = options;
  // build A runs in its copy and its entries are read here: a relative path would name two caches
  const firstCache = options.firstCache === undefined ? undefined : resolve(options.firstCache);
  if (firstCache && !(await new Store(firstCache).exists())) {
    throw new InputError(`--first-cache ${firstCache}: not a bronze cache (no store/ in it); give the directory a build filled, e.g. .cache/bronze after make`);
  }
  const epoch = String(await sourceDateEpoch(projectRoot));
  const revision = (await sourceRevision(projectRoot)) ?? "";
  const files = await sourceFiles(projectRoot);
  const work = await mkdtemp(join(tmpdir(), "bronze-repro-"));
  const common = { SOURCE_DATE_EPOCH: epoch, BRONZE_REVISION: revision };
  const treeB = join(work, "second", "copy", "of-the-checkout", "bronze");
  const a: BuildPlace = {
    tree: join(work, "a", "bronze"),
    cacheDir: firstCache ?? join(work, "a", "bronze", ".cache", "bronze"),
    hostName: "bronze-repro-a",
    umask: "0022",
    env: placeEnv(process.env, { ...common, TMPDIR: join(work, "tmp-a"), HOME: join(work, "home-a"), USER: "builder", LOGNAME: "builder", TZ: "UTC", LANG: "C.UTF-8" }),
  };
  const b: BuildPlace = {
    tree: treeB,
    cacheDir: join(treeB, ".cache", "bronze"),
    hostName: "another-host-b",
    umask: "0027",
    env: placeEnv(process.env, { ...common, TMPDIR: join(work, "another", "tmp"), HOME: join(work, "home-b"), USER: "someone-else", LOGNAME: "someone-else", TZ: "Pacific/Chatham", LANG: "fr_FR.UTF-8" }),
  };
  const logs = join(work, "logs");
  await mkdir(logs, { recursive: true });
  const profileArg = options.profile.includes("/") ? relative(projectRoot, options.profile) : options.profile;
  if (profileArg.startsWith("..")) throw new InputError(`${options.profile}: bronze repro builds profiles inside the checkout (it copies the checkout)`);

  log(`work directory ${work}`);
  for (const place of [a, b]) await copyCheckout(projectRoot, files, place.tree);
  const keys = join(work, "secure-boot-keys");
  // the three builds, signed with throwaway Secure Boot keys that go with them: no key outlives the builds,
  // whether the work directory is kept or not
  const buildAll = async () => {
    await bronzeIn(a, ["keys", "generate", keys, "--common-name", "bronze repro db"], join(logs, "keys.log"));
    const build = async (place: BuildPlace, name: string, cacheDir: string) => {
      const started = Date.now();
      log(`build ${name}: ${place.tree} (host ${place.hostName}, umask ${place.umask}, TZ ${place.env.TZ}, cache ${cacheDir})`);
      const args = ["build", "--profile", profileArg, "--cache-dir", cacheDir, "--accept-size-growth", ...(options.arch ? ["--arch", options.arch] : [])];
      await bronzeIn(place, [...args, "--secure-boot-key", join(keys, "db.key"), "--secure-boot-cert", join(keys, "db.crt")], join(logs, `build-${name}.log`));
      log(`build ${name}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    };
    // B first: its kernel compile is the long part, and what waits on the machine's kernel-build lock waits less
    await build(b, "B", b.cacheDir);
    await build(a, "A", a.cacheDir);
    const [fromA, fromB] = await Promise.all([new Store(a.cacheDir).entries(), new Store(b.cacheDir).entries()]);
    const groups = await compareSourceBuilds(fromA, fromB);

    // build C: the second checkout again, with B's packages and A's kernel; everything downstream is rebuilt
    const cacheC = join(work, "cache-c");
    await cacheAroundFirstKernel(fromA, fromB, cacheC);
    const outOf = (place: BuildPlace) => join(place.tree, "_out", options.outDirName);
    await moveIntoPlace(outOf(b), join(work, "out-b"), { sync: false });
    await build(b, "C", cacheC);
    return { groups, outA: outOf(a), outC: outOf(b) };
  };
  const { groups, outA, outC } = await buildAll().finally(() => rm(keys, { recursive: true, force: true }));
  const published = await compareTrees(outA, outC);
  groups.push({ title: "published artifacts: build A vs build C (C: B's checkout and packages, A's kernel)", files: published.filter((f) => !NOT_REPRODUCIBLE.has(f.path)), listIdentical: true });

  groups.push({ title: "boot media made from each installer: build A vs build C", files: await compareBootMedia([a, b], [outA, outC], work, logs), listIdentical: true });

  const different = groups.flatMap((g) => g.files).filter((f) => f.verdict.status === "different");
  await explainWithDiffoscope(different, join(work, "diffoscope"), log);
  const result: ReproResult = { workDir: work, groups, differences: different.length, installerDigests: [await installerDigest(outA), await installerDigest(outC)] };
  await writeFile(join(work, "repro.json"), `${JSON.stringify(result, null, 2)}\n`);
  if (different.length === 0 && !options.keep) await rm(work, { recursive: true, force: true });
  return result;
}
