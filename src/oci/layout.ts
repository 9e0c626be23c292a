import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { canonicalBytes, type Blob } from "./image.ts";
import { parentDirectories, writeTar, type TarEntry } from "./tar.ts";
import { makeAtomic } from "../core/atomic.ts";

export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

/**
 * The files of an OCI image layout holding `root` (an index or a manifest)
 * under the tag `refName`, and every blob it needs; `more` roots (a signature beside the
 * image) get their own tags, their blobs come in `blobs`.
 */
export function layoutFiles(root: Blob, blobs: readonly Blob[], refName: string, more: readonly { root: Blob; refName: string }[] = []): { path: string; data: Buffer }[] {
  const unique = new Map<string, Buffer>();
  for (const blob of [root, ...blobs, ...more.map((m) => m.root)]) unique.set(blob.descriptor.digest, blob.data);
  const index = canonicalBytes({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{ root, refName }, ...more].map((r) => ({ ...r.root.descriptor, annotations: { ...r.root.descriptor.annotations, [REF_NAME_ANNOTATION]: r.refName } })),
  });
  return [
    { path: "oci-layout", data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { path: "index.json", data: index },
    ...[...unique].map(([digest, data]) => ({ path: `blobs/${digest.replace(":", "/")}`, data })),
  ];
}

/** The layout as one reproducible tar (sorted, root-owned, mtime = epoch). */
export function layoutTar(files: readonly { path: string; data: Buffer }[], epoch: number): Buffer {
  const entries: TarEntry[] = [...parentDirectories(files.map((f) => f.path)), ...files.map((f) => ({ path: f.path, type: "file" as const, mode: 0o644, data: f.data }))];
  return writeTar(entries, epoch);
}

/** Writes the files as one directory (a layout, or one holding a layout and its tar), whole or not at all (core/atomic). */
export async function writeLayoutDir(dir: string, files: readonly { path: string; data: Buffer }[]): Promise<void> {
  await makeAtomic(dir, async (tmp) => {
    for (const file of files) {
      await mkdir(dirname(join(tmp, file.path)), { recursive: true });
      await writeFile(join(tmp, file.path), file.data);
    }
  });
}
