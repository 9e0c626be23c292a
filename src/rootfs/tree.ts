import { copyFile, link, lstat, mkdir, readdir, readlink, symlink } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { BronzeError } from "../core/errors.ts";

/** The top-level directories that live under /usr in a merged-/usr root. */
const MERGED_INTO_USR = new Set(["bin", "sbin", "lib", "lib64"]);

/** Build-time files no running system needs: headers, static libraries, objects, compiler specs. */
export function isDevelopmentFile(path: string): boolean {
  return (
    path === "usr/include" ||
    path.startsWith("usr/include/") ||
    /\.(a|o|la|specs)$/.test(path) ||
    /(^|\/)pkgconfig(\/|$)/.test(path)
  );
}

/** Where a package's file goes in the root: /bin, /sbin, /lib move under /usr. */
export function rootPathOf(path: string): string {
  const [top, ...rest] = path.split("/");
  return top && MERGED_INTO_USR.has(top) ? ["usr", top, ...rest].join("/") : path;
}

/**
 * A file of the cache in the root tree: a hard link (the tree is only read, by mksquashfs, whose
 * SOURCE_DATE_EPOCH sets every time), a copy across file systems.
 */
async function placeFile(source: string, target: string): Promise<void> {
  await link(source, target).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== "EXDEV" && error.code !== "EPERM") throw error;
    await copyFile(source, target);
  });
}

/**
 * Puts a package's files into the root tree (see placeFile); a file that another package
 * already installed is an error naming both. The tree's files must never be written: they are the cache's.
 */
export async function mergeInto(
  root: string,
  from: string,
  owner: string,
  owners: Map<string, string>,
): Promise<void> {
  const entries = await readdir(from, { recursive: true, withFileTypes: true });
  entries.sort((a, b) => join(a.parentPath, a.name).localeCompare(join(b.parentPath, b.name)));
  for (const entry of entries) {
    const source = join(entry.parentPath, entry.name);
    const rel = relative(from, source);
    if (isDevelopmentFile(rel)) continue;
    const target = join(root, rootPathOf(rel));
    if (entry.isDirectory()) {
      await mkdir(target, { recursive: true });
      continue;
    }
    const key = rootPathOf(rel);
    const previous = owners.get(key);
    if (previous) throw new BronzeError(`/${key} is installed by both package '${previous}' and package '${owner}'`);
    owners.set(key, owner);
    await mkdir(dirname(target), { recursive: true });
    const info = await lstat(source);
    if (info.isSymbolicLink()) await symlink(await readlink(source), target);
    else if (info.isFile()) await placeFile(source, target);
    else throw new BronzeError(`package '${owner}' installs /${key}, which is neither a file, a directory nor a symlink`);
  }
}
