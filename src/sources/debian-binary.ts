import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { makeAtomic, moveIntoPlace } from "../core/atomic.ts";
import { BronzeError } from "../core/errors.ts";
import { run } from "../core/exec.ts";
import { cachedPath, verifyFile, type FetchContext } from "./fetch.ts";

/** A binary package of Debian's for some architecture, pinned by the sha256 of its .deb. */
export interface DebianBinaryPin {
  package: string;
  version: string;
  /** Debian's name for the architecture (arm64, amd64) */
  architecture: string;
  sha256: string;
}

/** The .deb's file name, as Debian's archive names it (the version without its epoch). */
export const debFileName = (pin: DebianBinaryPin): string => `${pin.package}_${pin.version.replace(/^\d+:/, "")}_${pin.architecture}.deb`;

const describe = (pin: DebianBinaryPin): string => `Debian package ${pin.package}:${pin.architecture}=${pin.version}`;

/**
 * apt's options for an index of `architecture` alone, kept in the cache: the host's own apt state (its
 * architectures, its installed packages) is neither read nor changed.
 */
function aptOptions(cacheDir: string, architecture: string): string[] {
  const state = join(cacheDir, "apt", architecture);
  return [
    "-q",
    "-o", `APT::Architecture=${architecture}`,
    "-o", `APT::Architectures::=${architecture}`,
    "-o", `Dir::State::Lists=${join(state, "lists")}`,
    "-o", `Dir::Cache=${join(state, "cache")}`,
    "-o", "Dir::State::status=/dev/null",
    "-o", "APT::Sandbox::User=root",
  ];
}

/** The pinned .deb, from the cache or downloaded (apt-get download), verified before it is kept or returned. */
export async function fetchDebianBinary(pin: DebianBinaryPin, ctx: FetchContext): Promise<string> {
  const kept = cachedPath(ctx.cacheDir, pin.sha256, debFileName(pin));
  if (await stat(kept).then(() => true, () => false)) {
    await verifyFile(kept, pin.sha256, describe(pin), ctx.definedIn);
    return kept;
  }
  const options = aptOptions(ctx.cacheDir, pin.architecture);
  const state = join(ctx.cacheDir, "apt", pin.architecture);
  await mkdir(join(state, "lists", "partial"), { recursive: true });
  await mkdir(join(state, "cache", "archives", "partial"), { recursive: true });
  await mkdir(join(ctx.cacheDir, "tmp"), { recursive: true });
  const tmp = await mkdtemp(join(ctx.cacheDir, "tmp", "deb-"));
  try {
    const fail = (e: unknown): never => {
      throw new BronzeError(`cannot fetch ${describe(pin)} (pinned in ${ctx.definedIn}): ${e instanceof Error ? e.message : String(e)}`);
    };
    await run("apt-get", [...options, "update"], { logFile: ctx.logFile }).catch(fail);
    await run("apt-get", [...options, "download", `${pin.package}:${pin.architecture}=${pin.version}`], { cwd: tmp, logFile: ctx.logFile }).catch(fail);
    const [file] = await readdir(tmp);
    if (!file) throw new BronzeError(`apt-get download of ${describe(pin)} wrote no file`);
    await verifyFile(join(tmp, file), pin.sha256, describe(pin), ctx.definedIn);
    await mkdir(dirname(kept), { recursive: true });
    await moveIntoPlace(join(tmp, file), kept, { whenPresent: "keep" });
    return kept;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The pinned package's files, unpacked once into the cache (dpkg-deb -x; nothing installed), by its digest. */
export async function unpackedDebianBinary(pin: DebianBinaryPin, ctx: FetchContext): Promise<string> {
  const deb = await fetchDebianBinary(pin, ctx);
  const dir = join(ctx.cacheDir, "unpacked", pin.sha256);
  if (await stat(dir).then(() => true, () => false)) return dir;
  await mkdir(dirname(dir), { recursive: true });
  await makeAtomic(dir, (tmp) => run("dpkg-deb", ["-x", deb, tmp], { logFile: ctx.logFile }));
  return dir;
}
