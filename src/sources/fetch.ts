import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { BronzeError, InputError } from "../core/errors.ts";
import { run } from "../core/exec.ts";
import { sha256File, treeDigest } from "../core/hash.ts";
import { displayPath } from "../core/paths.ts";
import { describeSource, type DebianPin, type SourcePin } from "./pin.ts";
import { moveIntoPlace } from "../core/atomic.ts";

/** A source that has been verified against its pin and may be used. */
export interface VerifiedSource {
  pin: SourcePin;
  /** a file (archive) or, for local sources, a directory */
  path: string;
  /** sha256 of the file, or the tree digest of a local directory */
  digest: string;
}

export interface FetchContext {
  cacheDir: string;
  /** the definition that pins the source, named in errors */
  definedIn: string;
  logFile: string;
}

export class ChecksumMismatch extends BronzeError {
  constructor(what: string, definedIn: string, expected: string, actual: string) {
    super(
      `checksum mismatch for ${what}\n` +
        `  expected sha256 ${expected} (pinned in ${displayPath(definedIn)})\n` +
        `  actual   sha256 ${actual}\n` +
        `Nothing was cached. If this source is the one you want, update the sha256 in ${displayPath(definedIn)}.`,
    );
    this.name = "ChecksumMismatch";
  }
}

export async function verifyFile(path: string, expected: string, what: string, definedIn: string): Promise<void> {
  const actual = await sha256File(path);
  if (actual !== expected) throw new ChecksumMismatch(what, definedIn, expected, actual);
}

/** Where a verified source file is kept: by its digest, under its own name. */
export const cachedPath = (cacheDir: string, digest: string, file: string) => join(cacheDir, "sources", digest, file);

/** Fetches of Debian source packages in this process, by cache and package: pins of one package go one after another. */
const fetching = new Map<string, Promise<string>>();

async function fetchDebian(pin: DebianPin, ctx: FetchContext): Promise<string> {
  const sourcePackage = `${ctx.cacheDir}\0${pin.package}=${pin.version}`;
  const before = fetching.get(sourcePackage) ?? Promise.resolve("");
  const current = before.catch(() => "").then(() => cachedOrDownloaded(pin, ctx));
  fetching.set(sourcePackage, current);
  try {
    return await current;
  } finally {
    if (fetching.get(sourcePackage) === current) fetching.delete(sourcePackage);
  }
}

async function cachedOrDownloaded(pin: DebianPin, ctx: FetchContext): Promise<string> {
  const cached = cachedPath(ctx.cacheDir, pin.sha256, pin.file);
  if (!(await stat(cached).then(() => true, () => false))) return downloadDebian(pin, ctx);
  await verifyFile(cached, pin.sha256, describeSource(pin), ctx.definedIn);
  return cached;
}

/**
 * One `apt-get source` for the pinned file; the package's other files (its Debian tarball, its .dsc) come
 * with it and are kept too, each by its own digest, so that the package's next pin is served from the cache.
 * Nothing is kept when the pinned file does not match its pin.
 */
async function downloadDebian(pin: DebianPin, ctx: FetchContext): Promise<string> {
  await mkdir(join(ctx.cacheDir, "tmp"), { recursive: true });
  const tmp = await mkdtemp(join(ctx.cacheDir, "tmp", "fetch-"));
  try {
    await run("apt-get", ["source", "--download-only", "-q", `${pin.package}=${pin.version}`], {
      cwd: tmp,
      logFile: ctx.logFile,
    }).catch((e: unknown) => {
      throw new BronzeError(
        `cannot fetch Debian source package ${pin.package}=${pin.version} (pinned in ${displayPath(ctx.definedIn)}). ` +
          `Is deb-src enabled? Run scripts/setup-host.sh (part of 'make'). ${e instanceof Error ? e.message : ""}`,
      );
    });
    const downloaded = await readdir(tmp);
    if (!downloaded.includes(pin.file)) {
      throw new InputError(
        `${displayPath(ctx.definedIn)}: Debian source package ${pin.package}=${pin.version} has no file ${pin.file}; ` +
          `it has: ${downloaded.join(", ")}`,
      );
    }
    await verifyFile(join(tmp, pin.file), pin.sha256, describeSource(pin), ctx.definedIn);
    for (const file of downloaded) {
      const kept = cachedPath(ctx.cacheDir, file === pin.file ? pin.sha256 : await sha256File(join(tmp, file)), file);
      await mkdir(dirname(kept), { recursive: true });
      await moveIntoPlace(join(tmp, file), kept, { whenPresent: "keep" });
    }
    return cachedPath(ctx.cacheDir, pin.sha256, pin.file);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * The digest of the source a pin names, known without fetching it (the pinned sha256; a local tree's own):
 * what a cache key needs, so that a step served from the cache fetches nothing.
 */
export async function pinnedDigest(pin: SourcePin): Promise<string> {
  return pin.kind === "local" ? treeDigest(pin.path) : pin.sha256;
}

/** The name a source goes by in records and SBOMs: its file's, or "local" for a directory. */
export function sourceName(pin: SourcePin): string {
  return pin.kind === "local" ? "local" : basename(pin.kind === "debian" ? pin.file : pin.path);
}

/** Fetches a source if needed and verifies it against its pin; nothing unverified is returned or cached. */
export async function fetchSource(pin: SourcePin, ctx: FetchContext): Promise<VerifiedSource> {
  switch (pin.kind) {
    case "debian":
      return { pin, path: await fetchDebian(pin, ctx), digest: pin.sha256 };
    case "host-file":
      await stat(pin.path).catch(() => {
        throw new BronzeError(`${pin.path} (pinned in ${displayPath(ctx.definedIn)}) is missing; run 'make' to install it`);
      });
      await verifyFile(pin.path, pin.sha256, pin.path, ctx.definedIn);
      return { pin, path: pin.path, digest: pin.sha256 };
    case "local":
      return { pin, path: pin.path, digest: await treeDigest(pin.path) };
  }
}
