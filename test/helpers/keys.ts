import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { CompileCache } from "../../src/kernel/compile-cache.ts";
import { findPrivateKeys } from "../../src/kernel/key-scan.ts";
import { KEY_ROOT } from "../../src/kernel/signing-key.ts";

/** Ephemeral key directories currently on the key tmpfs. */
export async function leftoverKeyDirs(): Promise<string[]> {
  return (await readdir(KEY_ROOT)).filter((n) => n.startsWith("bronze-modkey")).map((n) => join(KEY_ROOT, n));
}

/**
 * Files below `dirs` holding a PEM private key or the key's bytes. A cache's compiled kernel trees and unpacked
 * sources (gigabytes, most of them older than the key) are searched in the files changed since `since`: a file's
 * ctime, which no program can set back, moves with every write, so a copy made after the key existed is searched.
 */
export async function findKeyCopies(dirs: readonly string[], needles: readonly Buffer[], since: number): Promise<string[]> {
  // a cache's compiled trees and unpacked sources are where bronze keeps them by default
  const trees = dirs.flatMap((d) => {
    const cache = new CompileCache(join(d, "compile"));
    return [cache.treesDir, cache.sourcesDir];
  });
  return [...(await findPrivateKeys(dirs, { needles, exclude: trees })), ...(await findPrivateKeys(trees, { needles, changedSince: since }))];
}
