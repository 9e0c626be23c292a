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

/** Digest of a directory's content: each file's path, kind, executable bit and bytes. */
export async function treeDigest(dir: string): Promise<string> {
  const hash = createHash("sha256");
  for (const rel of await listFiles(dir)) {
    const path = join(dir, rel);
    const info = await lstat(path);
    if (info.isSymbolicLink()) hash.update(`L ${rel} ${await readlink(path)}\n`);
    else hash.update(`F ${rel} ${info.mode & 0o111 ? "x" : "-"} ${await sha256File(path)}\n`);
  }
  return hash.digest("hex");
}

/** Digest of the source files that implement a step: a change to the recipe is a change of input. */
export async function recipeDigest(...moduleUrls: string[]): Promise<string> {
  const parts = await Promise.all(moduleUrls.map((u) => readFile(fileURLToPath(u))));
  return sha256(Buffer.concat(parts));
}
