import { copyFile, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { sha256File } from "../core/hash.ts";

export interface PublishedFile {
  name: string;
  path: string;
  size: number;
  sha256: string;
}

/**
 * Copies the artifacts into `outDir` (e.g. _out/minimal) with a manifest.json;
 * the directory is assembled under a temporary name and renamed into place.
 */
export async function publish(
  outDir: string,
  files: readonly { name: string; from: string }[],
  manifest: Record<string, unknown>,
): Promise<PublishedFile[]> {
  const tmp = `${outDir}.tmp-${randomBytes(4).toString("hex")}`;
  await mkdir(tmp, { recursive: true });
  try {
    const published: PublishedFile[] = [];
    for (const { name, from } of files) {
      await copyFile(from, join(tmp, name));
      published.push({ name, path: join(outDir, name), size: (await stat(from)).size, sha256: await sha256File(from) });
    }
    const record = { ...manifest, artifacts: published.map(({ name, size, sha256 }) => ({ name, size, sha256 })) };
    await writeFile(join(tmp, "manifest.json"), JSON.stringify(record, null, 2) + "\n");
    await rm(outDir, { recursive: true, force: true });
    await rename(tmp, outDir);
    return published;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

