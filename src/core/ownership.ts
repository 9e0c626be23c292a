import { randomBytes } from "node:crypto";
import { readdir, readFile, rm } from "node:fs/promises";
import { basename, join } from "node:path";

const OWNER_FILE = ".owner.pid";

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The process that claimed `dir` (a key directory of an earlier bronze, which claimed it by this file), or 0. */
export async function ownerOf(dir: string): Promise<number> {
  return Number(await readFile(join(dir, OWNER_FILE), "utf8").catch(() => "0")) || 0;
}

const OWNED_NAME = /^.+\.(\d+)\.[0-9a-f]{8}$/;

/** The process named in a name made by ownedName, or 0 for another name. */
const ownerInName = (name: string): number => Number(OWNED_NAME.exec(name)?.[1] ?? 0);

/**
 * Whether `dir` belongs to a process that is gone: the one its name says (ownedName), which owns it from the
 * moment it exists, else the one that claimed it; a directory of neither kind was never claimed.
 */
export async function isAbandoned(dir: string): Promise<boolean> {
  const owner = ownerInName(basename(dir)) || (await ownerOf(dir));
  return !owner || (owner !== process.pid && !processAlive(owner));
}

/** A name that says which process owns what it names, from the moment it exists: `<prefix>.<pid>.<random>`. */
export function ownedName(prefix: string): string {
  return `${prefix}.${process.pid}.${randomBytes(4).toString("hex")}`;
}

/** Removes what is under `parent` named by ownedName whose process is gone; anything else there is left alone. */
export async function removeOrphans(parent: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    const pid = ownerInName(name);
    if (!pid || pid === process.pid || processAlive(pid)) continue;
    await rm(join(parent, name), { recursive: true, force: true }).catch(() => undefined);
    removed.push(join(parent, name));
  }
  return removed;
}

/**
 * A work directory under `parent` for this process alone (not yet made), named by ownedName: two builds
 * in one checkout that make the same step at once never share one. What killed builds left there goes first.
 */
export async function ownedWorkDir(parent: string, prefix: string): Promise<string> {
  await removeOrphans(parent);
  return join(parent, ownedName(prefix));
}
