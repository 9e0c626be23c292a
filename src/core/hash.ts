import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readFile, readdir, readlink } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** JSON with object keys sorted at every level, so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }
    return v;
  });
}

/** The cache key of a build step: the hash of everything that can change its output. */
export function inputKey(inputs: Record<string, unknown>): string {
  return sha256(canonicalJson(inputs));
}

/** Paths below `dir` (relative, sorted bytewise), directories excluded. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

const SMALL_FILE = 1 << 20;

/** One line of a tree digest: the path, its kind, executable bit and bytes (or link target). */
async function treeLine(dir: string, rel: string): Promise<string> {
  const path = join(dir, rel);
  const info = await lstat(path);
  if (info.isSymbolicLink()) return `L ${rel} ${await readlink(path)}\n`;
  // small files in one read: a stream per file cost most of the time on trees of many small files
  const digest = info.size < SMALL_FILE ? sha256(await readFile(path)) : await sha256File(path);
  return `F ${rel} ${info.mode & 0o111 ? "x" : "-"} ${digest}\n`;
}

/** Digest of a directory's content: each file's path, kind, executable bit and bytes. */
export async function treeDigest(dir: string): Promise<string> {
  return (await treeContent(dir)).digest;
}

/** A directory's digest (treeDigest) and how many files (and links) it took in, from one listing. */
export async function treeContent(dir: string): Promise<{ digest: string; files: number }> {
  const files = await listFiles(dir);
  const lines: string[] = new Array<string>(files.length);
  // a few files at a time: reads overlap with hashing, and the order of the lines stays the paths' order
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      lines[i] = await treeLine(dir, files[i]!);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const hash = createHash("sha256");
  for (const line of lines) hash.update(line);
  return { digest: hash.digest("hex"), files: files.length };
}

/** Digest of the source files that implement a step: a change to the recipe is a change of input. */
export async function recipeDigest(...moduleUrls: string[]): Promise<string> {
  const parts = await Promise.all(moduleUrls.map((u) => readFile(fileURLToPath(u))));
  return sha256(Buffer.concat(parts));
}
