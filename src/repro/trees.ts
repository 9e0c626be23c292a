import { open, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { readTree } from "../oci/dir-read.ts";
import type { ReadEntry } from "../oci/tar-read.ts";
import { compareBytes, compareKernelImages, compareSignedModules, describeDifference, firstDifference, type Verdict } from "./compare.ts";
import { FILES } from "../core/outputs.ts";

/** One file of a build's output, as compared: path relative to the tree, a verdict. */
export interface FileVerdict {
  path: string;
  verdict: Verdict;
  /** the two files compared, when both exist */
  files?: [string, string];
}

/** A tree's entries by path; file contents are read when compared. */
async function listTree(root: string): Promise<Map<string, ReadEntry>> {
  return new Map((await readTree(root, { data: false })).map((e) => [e.path, e]));
}

/** How the files of a tree are compared: byte for byte unless a rule says otherwise. */
export type FileRule = (relPath: string, a: Buffer, b: Buffer) => Verdict;

/**
 * Compares two trees: the same paths, kinds, permission bits and link targets, and each file by its rule.
 * Every path is listed, so a report names exactly what was compared.
 */
export async function compareTrees(a: string, b: string, rule: FileRule = (_, x, y) => compareBytes(x, y)): Promise<FileVerdict[]> {
  const [left, right] = await Promise.all([listTree(a), listTree(b)]);
  const results: FileVerdict[] = [];
  for (const path of [...new Set([...left.keys(), ...right.keys()])].sort()) {
    const x = left.get(path);
    const y = right.get(path);
    if (!x || !y) {
      results.push({ path, verdict: { status: "different", detail: `only in the ${x ? "first" : "second"} build` } });
    } else if (x.type !== y.type || x.mode !== y.mode) {
      results.push({ path, verdict: { status: "different", detail: `${x.type} ${x.mode.toString(8)} vs ${y.type} ${y.mode.toString(8)}` } });
    } else if (x.type === "symlink") {
      results.push({ path, verdict: x.target === y.target ? { status: "identical" } : { status: "different", detail: `links to ${x.target ?? ""} vs ${y.target ?? ""}` } });
    } else if (x.type === "file") {
      const files: [string, string] = [join(a, path), join(b, path)];
      results.push({ path, verdict: rule(path, await readFile(files[0]), await readFile(files[1])), files });
    }
  }
  return results;
}

/** Two files compared a chunk at a time (disk images are GiBs): the first differing offset, as compareBytes gives it. */
export async function compareFiles(a: string, b: string): Promise<Verdict> {
  const [x, y] = await Promise.all([open(a), open(b)]);
  try {
    const [sizeA, sizeB] = (await Promise.all([x.stat(), y.stat()])).map((s) => s.size) as [number, number];
    const chunk = 16 << 20;
    const [bufA, bufB] = [Buffer.alloc(chunk), Buffer.alloc(chunk)];
    for (let at = 0; at < Math.max(sizeA, sizeB); at += chunk) {
      const [readA, readB] = await Promise.all([x.read(bufA, 0, chunk, at), y.read(bufB, 0, chunk, at)]);
      const [partA, partB] = [bufA.subarray(0, readA.bytesRead), bufB.subarray(0, readB.bytesRead)];
      const offset = firstDifference(partA, partB);
      if (offset !== undefined) return { status: "different", detail: describeDifference(partA, partB, offset, at) };
    }
    return { status: "identical" };
  } finally {
    await Promise.all([x.close(), y.close()]);
  }
}

/** The module-signing certificate a kernel cache entry holds, and the kernel image beside it. */
const KERNEL_CERT = FILES.moduleCert;
const KERNEL_IMAGE = FILES.kernel;

/**
 * The rule for a kernel entry built twice, each time with its own ephemeral key: modules equal with their
 * signatures stripped, the kernel equal with its certificate masked, the certificates themselves different.
 */
export async function kernelEntryRule(a: string, b: string): Promise<FileRule> {
  const [certA, certB] = await Promise.all([readFile(join(a, KERNEL_CERT)), readFile(join(b, KERNEL_CERT))]);
  return (path, x, y) => {
    if (path === KERNEL_CERT) {
      return x.equals(y)
        ? { status: "different", detail: "both builds embed the same certificate: the key was not ephemeral" }
        : { status: "equivalent", how: "each build's own ephemeral certificate (expected to differ)" };
    }
    if (path === KERNEL_IMAGE) return compareKernelImages(x, certA, y, certB);
    if (basename(path).endsWith(".ko")) return compareSignedModules(x, y);
    return compareBytes(x, y);
  };
}
