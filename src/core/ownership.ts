import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

const OWNER_FILE = ".owner.pid";

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Marks a directory as belonging to this process, so that a later run can tell it was abandoned. */
export async function claim(dir: string): Promise<void> {
  await writeFile(join(dir, OWNER_FILE), String(process.pid));
}

/** The process that claimed `dir`, or 0 when none did. */
export async function ownerOf(dir: string): Promise<number> {
  return Number(await readFile(join(dir, OWNER_FILE), "utf8").catch(() => "0")) || 0;
}

/** Whether `dir` was claimed by a process that is gone (or never claimed at all). */
export async function isAbandoned(dir: string): Promise<boolean> {
  const owner = await ownerOf(dir);
  return !owner || (owner !== process.pid && !processAlive(owner));
}

/** Removes the directories under `parent` whose owner is gone: what killed builds left behind. */
export async function removeAbandoned(parent: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    const dir = join(parent, name);
    if (await isAbandoned(dir)) {
      await rm(dir, { recursive: true, force: true });
      removed.push(dir);
    }
  }
  return removed;
}
