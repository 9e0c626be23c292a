import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import type { ReadEntry } from "./tar-read.ts";

/**
 * A directory read as archive entries, sorted, special files included (as their type, without data).
 * With `data: false` file contents are not read (the entries name the files; read them at join(root, path)).
 */
export async function readTree(root: string, options: { data?: boolean } = {}, dir = ""): Promise<ReadEntry[]> {
  const entries: ReadEntry[] = [];
  for (const name of (await readdir(join(root, dir))).sort()) {
    const path = dir ? `${dir}/${name}` : name;
    const info = await lstat(join(root, path));
    const base = { path, mode: info.mode & 0o7777, uid: 0, gid: 0 };
    if (info.isDirectory()) {
      entries.push({ ...base, type: "dir" }, ...(await readTree(root, options, path)));
    } else if (info.isSymbolicLink()) {
      entries.push({ ...base, type: "symlink", target: await readlink(join(root, path)) });
    } else if (info.isFile()) {
      entries.push({ ...base, type: "file", ...(options.data === false ? {} : { data: await readFile(join(root, path)) }) });
    } else {
      entries.push({ ...base, type: info.isCharacterDevice() ? "char" : info.isBlockDevice() ? "block" : info.isFIFO() ? "fifo" : "other" });
    }
  }
  return entries;
}

/** What entries hold (paths, types, modes, owners, link targets, contents): the same digest wherever they were read from. */
export function entriesDigest(entries: readonly ReadEntry[]): string {
  const hash = createHash("sha256");
  for (const e of entries) {
    const content = e.data ? createHash("sha256").update(e.data).digest("hex") : "";
    // an owner is hashed only when it is not root: digests of all-root trees stay what they were
    const owner = e.uid || e.gid ? ` ${e.uid}:${e.gid}` : "";
    hash.update(`${e.type} ${e.mode.toString(8)}${owner} ${JSON.stringify(e.path)} ${JSON.stringify(e.target ?? "")} ${content}\n`);
  }
  return hash.digest("hex");
}
