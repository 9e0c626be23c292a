import { open, readdir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ownedName } from "./ownership.ts";

/** Files synced at once: well within the open-file limit. */
const SYNC_BATCH = 64;

async function syncOne(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes a file, or every file and directory below a directory, to the disk: a rename after this never
 * exposes half-written data. The fsyncs go out together, so the filesystem commits them in a few journal
 * transactions, not one each.
 */
export async function syncToDisk(path: string): Promise<void> {
  if (!(await stat(path)).isDirectory()) return syncOne(path);
  const entries = await readdir(path, { recursive: true, withFileTypes: true });
  const paths = [...entries.filter((e) => e.isFile() || e.isDirectory()).map((e) => join(e.parentPath, e.name)), path];
  for (let i = 0; i < paths.length; i += SYNC_BATCH) await Promise.all(paths.slice(i, i + SYNC_BATCH).map(syncOne));
}

/** A temporary name beside `path`, owned by this process (core/ownership sweeps those of killed ones). */
export const tempBeside = (path: string): string => join(dirname(path), ownedName(`.${basename(path)}`));

/** What becomes of a file or directory already at the destination of a move. */
export type WhenPresent = "replace" | "keep" | "fail";

/**
 * Moves a finished file or directory, made under a temporary name, to `to`: on disk first, then renamed, so
 * readers see all of it or none, even after a crash. What is at `to` is replaced (a directory is removed
 * first), or kept, and then the one moved is removed: another process made the same thing first; or the
 * move fails (EEXIST) and leaves both alone. Returns
 * whether it was moved. `sync: false` is for what is checked at each use instead (compiled kernel trees,
 * whose tens of thousands of files would cost seconds to sync) or is scratch.
 */
export async function moveIntoPlace(from: string, to: string, options: { whenPresent?: WhenPresent; sync?: boolean } = {}): Promise<boolean> {
  const { whenPresent = "replace", sync = true } = options;
  if (sync) await syncToDisk(from);
  const present = await stat(to).catch(() => undefined);
  if (present && whenPresent === "fail") throw Object.assign(new Error(`${to} exists`), { code: "EEXIST" });
  // rename replaces a file, not a directory
  if (present?.isDirectory() && whenPresent === "replace") await rm(to, { recursive: true, force: true });
  try {
    await rename(from, to);
    return true;
  } catch (error) {
    // keep: another process put its copy there first (also between the stat and the rename)
    const code = (error as NodeJS.ErrnoException).code;
    if (whenPresent !== "keep" || (code !== "ENOTEMPTY" && code !== "EEXIST")) throw error;
    await rm(from, { recursive: true, force: true });
    return false;
  }
}

/** Writes `path` whole or not at all through `write` (for files written piece by piece, such as a sparse disk). */
export async function writeAtomic(path: string, write: (handle: FileHandle) => Promise<void>): Promise<void> {
  const tmp = tempBeside(path);
  try {
    const handle = await open(tmp, "wx");
    try {
      await write(handle);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/** Writes `path` whole or not at all: a temporary name beside it, synced to disk, then renamed over it. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await writeAtomic(path, (handle) => handle.writeFile(data));
}

/**
 * Makes a file or a directory whole or not at all (for what a tool writes, or a tree of files): `make`
 * writes it at a temporary name beside `path`; it is synced, then moved over what is there.
 */
export async function makeAtomic(path: string, make: (tmp: string) => Promise<unknown>): Promise<void> {
  const tmp = tempBeside(path);
  try {
    await make(tmp);
    await moveIntoPlace(tmp, path);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
}
