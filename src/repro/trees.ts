import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { basename, join } from "node:path";
import { compareBytes, compareKernelImages, compareSignedModules, type Verdict } from "./compare.ts";

/** One file of a build's output, as compared: path relative to the tree, a verdict. */
export interface FileVerdict {
  path: string;
  verdict: Verdict;
  /** the two files compared, when both exist */
  files?: [string, string];
}

interface Node {
  kind: "file" | "link" | "dir";
  mode: number;
  path: string;
}

async function listTree(root: string, rel = "", into = new Map<string, Node>()): Promise<Map<string, Node>> {
  for (const name of (await readdir(join(root, rel))).sort()) {
    const relPath = rel ? `${rel}/${name}` : name;
    const path = join(root, relPath);
    const info = await lstat(path);
    const kind = info.isSymbolicLink() ? "link" : info.isDirectory() ? "dir" : "file";
    into.set(relPath, { kind, mode: info.mode & 0o7777, path });
    if (kind === "dir") await listTree(root, relPath, into);
  }
  return into;
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
    } else if (x.kind !== y.kind || x.mode !== y.mode) {
      results.push({ path, verdict: { status: "different", detail: `${x.kind} ${x.mode.toString(8)} vs ${y.kind} ${y.mode.toString(8)}` } });
    } else if (x.kind === "link") {
      const [tx, ty] = await Promise.all([readlink(x.path), readlink(y.path)]);
      results.push({ path, verdict: tx === ty ? { status: "identical" } : { status: "different", detail: `links to ${tx} vs ${ty}` } });
    } else if (x.kind === "file") {
      results.push({ path, verdict: rule(path, await readFile(x.path), await readFile(y.path)), files: [x.path, y.path] });
    }
  }
  return results;
}

/** The module-signing certificate a kernel cache entry holds, and the kernel image beside it. */
const KERNEL_CERT = "module-signing.der";
const KERNEL_IMAGE = "vmlinuz";

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
