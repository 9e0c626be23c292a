import { createHash } from "node:crypto";
import { lstatSync } from "node:fs";
import { pacer } from "./pace.ts";
import { walkTree } from "./walk.ts";

/**
 * A file's ctime is trusted to tell of any later write once it is this much older than the clock: the file
 * system's clock is coarse (a few ms), so a write in the same tick as the check could leave it equal.
 */
export const SETTLED_MS = 1000;

export interface Fingerprint {
  digest: string;
  /** every ctime was older than the moment given (see SETTLED_MS): any later change will show */
  settled: boolean;
}

/** What to fingerprint: every file below each of `walk` (or the path itself), and each of `single` as it is. */
export interface FingerprintPaths {
  walk: readonly string[];
  /** directories too large to walk (PATH's), whose own ctime tells of an entry added, removed or replaced */
  single?: readonly string[];
}

/**
 * What the file system says of these paths, cheaply: inode, size, mode and ctime of each file (a missing
 * path too: one that appears later changes it as well). Any later write, replacement, chmod or rename
 * changes it, and no program can set a ctime back. Directories are listed by core/walk (synchronous, in a
 * fixed order: the same function takes a fingerprint and checks it). `label` names a path in the digest
 * (a store entry's files are named relative to the entry); `skip` leaves a file out.
 */
export async function statFingerprint(
  paths: FingerprintPaths,
  options: { label?: (path: string) => string; skip?: (path: string) => boolean; settledBefore?: number } = {},
): Promise<Fingerprint> {
  const { label = (path: string) => path, skip = () => false, settledBefore = Date.now() - SETTLED_MS } = options;
  const hash = createHash("sha256");
  const pace = pacer();
  const before = BigInt(settledBefore) * 1_000_000n;
  let settled = true;
  const walked = paths.walk.flatMap((root) =>
    lstatSync(root, { throwIfNoEntry: false })?.isDirectory()
      ? walkTree(root).filter((e) => e.kind !== "directory").map((e) => `${root}/${e.rel}`)
      : [root],
  );
  for (const path of [...walked.filter((p) => !skip(p)), ...(paths.single ?? [])]) {
    const info = lstatSync(path, { bigint: true, throwIfNoEntry: false });
    if (info && info.ctimeNs >= before) settled = false;
    hash.update(`${label(path)} ${info?.ino} ${info?.size} ${info?.mode} ${info?.ctimeNs}\n`);
    await pace();
  }
  return { digest: hash.digest("hex"), settled };
}
