import { copyFileSync, linkSync, mkdirSync, readlinkSync, symlinkSync } from "node:fs";
import { BronzeError } from "../core/errors.ts";
import { pacer } from "../core/pace.ts";
import { walkTree } from "../core/walk.ts";
import { outputOf } from "../pkgs/outputs.ts";

/** The top-level directories that live under /usr in a merged-/usr root. */
const MERGED_INTO_USR = new Set(["bin", "sbin", "lib", "lib64"]);

/** Where a package's file goes in the root: /bin, /sbin, /lib move under /usr. */
export function rootPathOf(path: string): string {
  const [top, ...rest] = path.split("/");
  return top && MERGED_INTO_USR.has(top) ? ["usr", top, ...rest].join("/") : path;
}

/**
 * A file of the cache in the root tree: a hard link (the tree is only read, by mksquashfs, whose
 * SOURCE_DATE_EPOCH sets every time), a copy across file systems.
 */
function placeFile(source: string, target: string): void {
  try {
    linkSync(source, target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EXDEV" && code !== "EPERM") throw error;
    copyFileSync(source, target);
  }
}

/**
 * Puts a package's files into the root tree (see placeFile); a file that another package
 * already installed is an error naming both. The tree's files must never be written: they are the cache's.
 * Synchronous calls, paced (core/pace.ts): a file at a time through the thread pool cost more than the rest
 * of the rootfs step but mksquashfs.
 */
export async function mergeInto(
  root: string,
  from: string,
  owner: string,
  owners: Map<string, string>,
): Promise<void> {
  const pace = pacer();
  for (const { rel, kind } of walkTree(from)) {
    // the package's runtime output: its development output is for the packages that depend on it
    if (outputOf(rel) === "development") continue;
    const source = `${from}/${rel}`;
    const key = rootPathOf(rel);
    const target = `${root}/${key}`;
    if (kind === "directory") {
      mkdirSync(target, { recursive: true });
      continue;
    }
    const previous = owners.get(key);
    if (previous) throw new BronzeError(`/${key} is installed by both package '${previous}' and package '${owner}'`);
    owners.set(key, owner);
    if (kind === "symlink") symlinkSync(readlinkSync(source), target);
    else if (kind === "file") placeFile(source, target);
    else throw new BronzeError(`package '${owner}' installs /${key}, which is neither a file, a directory nor a symlink`);
    await pace();
  }
}
