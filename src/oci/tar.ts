import { directoriesAbove } from "../core/paths.ts";
import type { ReadEntry } from "./tar-read.ts";

/** One entry of a reproducible tar archive: owner root, no user names, one fixed mtime. */
export type TarEntry =
  | { path: string; type: "dir"; mode: number }
  | { path: string; type: "file"; mode: number; data: Buffer }
  | { path: string; type: "symlink"; target: string };

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width includes the terminating NUL
  const text = value.toString(8).padStart(width - 1, "0");
  if (text.length > width - 1) throw new Error(`internal: ${value} does not fit a ${width}-byte tar field`);
  return `${text}\0`;
}

/** Splits a path into ustar's name (100) and prefix (155) fields. */
function splitPath(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: "" };
  const cut = path.lastIndexOf("/", 155);
  if (cut > 0 && Buffer.byteLength(path.slice(cut + 1)) <= 100) return { name: path.slice(cut + 1), prefix: path.slice(0, cut) };
  throw new Error(`tar: path '${path}' is too long for a ustar header`);
}

function header(entry: TarEntry, mtime: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  const path = entry.type === "dir" ? `${entry.path.replace(/\/$/, "")}/` : entry.path;
  const { name, prefix } = splitPath(path);
  const size = entry.type === "file" ? entry.data.length : 0;
  const mode = entry.type === "symlink" ? 0o777 : entry.mode & 0o7777;
  block.write(name, 0, 100, "utf8");
  block.write(octal(mode, 8), 100, "ascii");
  block.write(octal(0, 8), 108, "ascii"); // uid
  block.write(octal(0, 8), 116, "ascii"); // gid
  block.write(octal(size, 12), 124, "ascii");
  block.write(octal(mtime, 12), 136, "ascii");
  block.write(" ".repeat(8), 148, "ascii"); // checksum placeholder
  block.write(entry.type === "dir" ? "5" : entry.type === "symlink" ? "2" : "0", 156, "ascii");
  if (entry.type === "symlink") {
    if (Buffer.byteLength(entry.target) > 100) throw new Error(`tar: symlink target of '${entry.path}' is too long for a ustar header`);
    block.write(entry.target, 157, 100, "utf8");
  }
  block.write("ustar\u000000", 257, "ascii");
  // uname and gname stay empty: no user names
  block.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return block;
}

/**
 * A ustar archive of `entries`, sorted by path, every entry owned by 0:0 with
 * mtime `epoch` and no atime, ctime or PAX records: same entries, same bytes.
 */
export function writeTar(entries: readonly TarEntry[], epoch: number): Buffer {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]?.path === sorted[i - 1]?.path) throw new Error(`tar: '${sorted[i]?.path ?? ""}' appears twice`);
  }
  const parts: Buffer[] = [];
  for (const entry of sorted) {
    parts.push(header(entry, epoch));
    if (entry.type === "file") {
      parts.push(entry.data);
      const pad = (BLOCK - (entry.data.length % BLOCK)) % BLOCK;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/** An entry read from a directory or an archive, to be written again: files, directories and symlinks only. */
export function toTarEntry(entry: ReadEntry): TarEntry {
  if (entry.type === "dir") return { path: entry.path, type: "dir", mode: entry.mode };
  if (entry.type === "symlink") return { path: entry.path, type: "symlink", target: entry.target ?? "" };
  if (entry.type === "file") return { path: entry.path, type: "file", mode: entry.mode, data: entry.data ?? Buffer.alloc(0) };
  throw new Error(`tar: '${entry.path}' is a ${entry.type}; only files, directories and symlinks are written`);
}

/** Every directory above the given file paths, as tar directory entries. */
export function parentDirectories(paths: readonly string[], mode = 0o755): TarEntry[] {
  return [...directoriesAbove(paths)].map((path) => ({ path, type: "dir", mode }));
}
