import { copyFile, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { sha256File } from "../core/hash.ts";

export interface PublishedFile {
  name: string;
  path: string;
  size: number;
  sha256: string;
}

/** What goes to the output directory: artifacts copied from the cache, and content made for it. */
export interface OutputSet {
  copies: readonly { name: string; from: string }[];
  /** written as they are; names may contain '/' (e.g. an OCI layout directory); `unlisted` ones stay out of the manifest */
  contents: readonly { name: string; data: Buffer; unlisted?: boolean }[];
  /** large files made beside the output directory for it, renamed into place (then their directory removed) */
  moves?: readonly { name: string; from: string }[];
  /** the build manifest, without its list of artifacts, which publish adds */
  manifest: Record<string, unknown>;
}

/** manifest.json: the build record plus every artifact's name, size and sha256. */
export function manifestBytes(manifest: Record<string, unknown>, artifacts: readonly Omit<PublishedFile, "path">[]): Buffer {
  return Buffer.from(JSON.stringify({ ...manifest, artifacts: artifacts.map(({ name, size, sha256 }) => ({ name, size, sha256 })) }, null, 2) + "\n");
}

/** Name, size and sha256 of artifacts still in the cache, for a manifest. */
export async function describeFiles(files: readonly { name: string; from: string }[]): Promise<Omit<PublishedFile, "path">[]> {
  return Promise.all(files.map(async ({ name, from }) => ({ name, size: (await stat(from)).size, sha256: await sha256File(from) })));
}

/** Name, size and sha256 of content made in memory, for a manifest. */
export function describeData(files: readonly { name: string; data: Buffer }[]): Omit<PublishedFile, "path">[] {
  return files.map(({ name, data }) => ({ name, size: data.length, sha256: createHash("sha256").update(data).digest("hex") }));
}

/**
 * Writes the outputs into `outDir` (e.g. _out/minimal) with a manifest.json;
 * the directory is assembled under a temporary name and renamed into place.
 */
export async function publish(outDir: string, outputs: OutputSet): Promise<PublishedFile[]> {
  const tmp = `${outDir}.tmp-${randomBytes(4).toString("hex")}`;
  await mkdir(tmp, { recursive: true });
  try {
    for (const { name, from } of outputs.copies) await copyFile(from, join(tmp, name));
    for (const { name, data } of outputs.contents) {
      await mkdir(dirname(join(tmp, name)), { recursive: true });
      await writeFile(join(tmp, name), data);
    }
    for (const { name, from } of outputs.moves ?? []) {
      await rename(from, join(tmp, name));
      await rm(dirname(from), { recursive: true, force: true });
    }
    const names = [...outputs.copies, ...outputs.contents, ...(outputs.moves ?? [])].map((f) => f.name).filter((n) => !n.includes("/"));
    const described = await describeFiles(names.map((name) => ({ name, from: join(tmp, name) })));
    const unlisted = new Set(outputs.contents.filter((c) => c.unlisted).map((c) => c.name));
    await writeFile(join(tmp, "manifest.json"), manifestBytes(outputs.manifest, described.filter((d) => !unlisted.has(d.name))));
    await rm(outDir, { recursive: true, force: true });
    await rename(tmp, outDir);
    return described.map((d) => ({ ...d, path: join(outDir, d.name) }));
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    for (const { from } of outputs.moves ?? []) await rm(dirname(from), { recursive: true, force: true });
    throw e;
  }
}

