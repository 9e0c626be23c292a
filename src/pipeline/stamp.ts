import { readFileSync, statSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { delimiter, dirname, join } from "node:path";
import { writeFileAtomic } from "../core/atomic.ts";
import { SETTLED_MS, statFingerprint, type Fingerprint } from "../core/fingerprint.ts";
import { canonicalJson, sha256 } from "../core/hash.ts";
import { CHECKED, defaultCacheDir } from "../core/store.ts";
import { ARCHES } from "../core/arch.ts";
import { pulledExtensionDir } from "../extensions/pulled.ts";
import type { Profile } from "../profile/profile.ts";

/**
 * What a successful build read, served from the cache and published, and what it printed. A build of the
 * same command in the same surroundings, whose paths all stat as they did, would change nothing: bronze
 * then prints the stamp instead of loading the pipeline (a no-op costs Node's start-up and some stats).
 */
export interface BuildStamp {
  format: typeof FORMAT;
  /** digest of the command, its directory, the environment and Node */
  context: string;
  /** walked: every file below each (profiles, recipes, kernel config, the entries used, the outputs) */
  walk: string[];
  /** left out of the walk: when an entry's files were last hashed (store.ts), which says nothing of them */
  skip: string[];
  /** stat'ed only: directories too large to walk (PATH's), whose own ctime tells of any file added or replaced */
  single: string[];
  fingerprint: string;
  profile: string;
  builtAt: string;
  /** what the build printed after its first line */
  summary: string[];
}

const FORMAT = 1;

export interface BuildReads {
  projectRoot: string;
  profile: Profile;
  /** the directories of the store entries the build used */
  entries: readonly string[];
  outDir: string;
  /** where extensions pulled from a registry are kept, by digest */
  cacheDir: string;
}

/**
 * Everything a build's result depends on that is not named by its command and environment: the profile
 * files and what they point to, the recipes and kernel inputs, the commit (SOURCE_DATE_EPOCH and the
 * revision come from it), the host tools (Debian's package database, PATH's directories, the stub and
 * the boot loader), Node and bronze itself. Undefined where the commit cannot be told by stat alone.
 */
function buildReads(reads: BuildReads): Pick<BuildStamp, "walk" | "skip" | "single"> | undefined {
  const { projectRoot, profile } = reads;
  const git = join(projectRoot, ".git");
  const fromGit = process.env.SOURCE_DATE_EPOCH === undefined || !process.env.BRONZE_REVISION;
  if (fromGit && !isDirectory(git)) return undefined;
  const extensions = profile.extensions.map((e) =>
    e.kind === "build" ? e.dir : e.kind === "image" ? e.source : pulledExtensionDir(reads.cacheDir, e.digest),
  );
  const walk = [
    ...profile.files,
    ...profile.kernelExtraConfig,
    ...profile.trustedKeys,
    ...extensions,
    join(projectRoot, "pkgs"),
    join(projectRoot, "kernel"),
    join(projectRoot, "package.json"),
    ...(fromGit ? [join(git, "HEAD"), join(git, "packed-refs"), join(git, "refs", "heads")] : []),
    ...reads.entries,
    reads.outDir,
  ];
  const pathDirs = (process.env.PATH ?? "").split(delimiter).filter((d) => d !== "");
  const bronze = process.argv[1] ?? "";
  // another architecture's are unpacked from a pinned package: its pin, in the source, is walked
  const efi = ARCHES.filter((a) => a.efi.kind === "host").flatMap((a) => [a.stub, a.bootloader]);
  const single = ["/var/lib/dpkg/status", ...efi, process.execPath, bronze, ...pathDirs];
  return { walk, skip: reads.entries.map((dir) => join(dir, CHECKED)), single };
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

function stampsDir(projectRoot: string): string {
  return join(defaultCacheDir(projectRoot), "stamps");
}

function stampPath(projectRoot: string, argv: readonly string[]): string {
  return join(stampsDir(projectRoot), `${sha256(JSON.stringify([process.cwd(), ...argv]))}.json`);
}

/** Set by shells for every command they start, and never read by bronze. */
const SHELL_VARIABLES = ["_", "OLDPWD", "SHLVL"];

function contextDigest(argv: readonly string[]): string {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !SHELL_VARIABLES.includes(name)));
  return sha256(canonicalJson({ argv, cwd: process.cwd(), env, node: process.version, bundle: process.argv[1] }));
}

function fingerprintOf(paths: Pick<BuildStamp, "walk" | "skip" | "single">, settledBefore?: number): Promise<Fingerprint> {
  const skipped = new Set(paths.skip);
  return statFingerprint(paths, { settledBefore, skip: (path) => skipped.has(path) });
}

/**
 * Stamps a build that succeeded, when every path it depends on is older than the build by SETTLED_MS (a
 * build that wrote its outputs or entries leaves none: the next one that changes nothing stamps). Any
 * earlier stamp of the command is removed first, so a stale one never outlives a build.
 */
export async function stampBuild(argv: readonly string[], startedAt: number, reads: BuildReads, summary: readonly string[]): Promise<boolean> {
  const path = stampPath(reads.projectRoot, argv);
  await rm(path, { force: true });
  const paths = buildReads(reads);
  if (!paths) return false;
  const seen = await fingerprintOf(paths, startedAt - SETTLED_MS);
  if (!seen.settled) return false;
  const stamp: BuildStamp = {
    format: FORMAT,
    context: contextDigest(argv),
    ...paths,
    fingerprint: seen.digest,
    profile: reads.profile.name,
    builtAt: new Date(startedAt).toISOString(),
    summary: [...summary],
  };
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, JSON.stringify(stamp, null, 1) + "\n");
  return true;
}

/** The stamp of this command, if nothing it depends on changed since (then running it would change nothing). */
export async function unchangedSince(projectRoot: string, argv: readonly string[]): Promise<BuildStamp | undefined> {
  let stamp: BuildStamp;
  try {
    stamp = JSON.parse(readFileSync(stampPath(projectRoot, argv), "utf8")) as BuildStamp;
  } catch {
    return undefined;
  }
  if (stamp.format !== FORMAT || stamp.context !== contextDigest(argv)) return undefined;
  const now = await fingerprintOf(stamp);
  return now.digest === stamp.fingerprint ? stamp : undefined;
}
