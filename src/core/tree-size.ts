import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

/** The regular files below `path` (or the file itself) and their bytes; none when it does not exist. */
export async function treeWeight(path: string): Promise<{ files: number; bytes: number }> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return { files: 0, bytes: 0 };
  if (!info.isDirectory()) return info.isFile() ? { files: 1, bytes: info.size } : { files: 0, bytes: 0 };
  let files = 0;
  let bytes = 0;
  for (const entry of await readdir(path, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    files++;
    bytes += (await lstat(join(entry.parentPath, entry.name))).size;
  }
  return { files, bytes };
}

/** Bytes of the regular files below `path` (or of the file itself), as installed: what a component weighs. */
export async function treeBytes(path: string): Promise<number> {
  return (await treeWeight(path)).bytes;
}
