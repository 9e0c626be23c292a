import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { createHash } from "node:crypto";
import { moveIntoPlace } from "../core/atomic.ts";
import { sha256File } from "../core/hash.ts";
import { ownedName, removeOrphans } from "../core/ownership.ts";
import { FILES } from "../core/outputs.ts";

export interface PublishedFile {
  name: string;
  path: string;
  size: number;
  sha256: string;
}

/** A file copied from the cache, with its size and digest when the caller has them (then it is not hashed again). */
export interface CopiedFile {
  name: string;
  from: string;
  size?: number;
  sha256?: string;
}

/** What goes to the output directory: artifacts copied from the cache, and content made for it. */
export interface OutputSet {
  copies: readonly CopiedFile[];
  /** written as they are; names may contain '/' (e.g. an OCI layout directory); `unlisted` ones stay out of the manifest */
  contents: readonly { name: string; data: Buffer; unlisted?: boolean }[];
  /** large files (or directories of them: pxe/) made beside the output directory for it (in a stagingDir), renamed into place */
  moves?: readonly { name: string; from: string }[];
  /** the build manifest, without its list of artifacts, which publish adds */
  manifest: Record<string, unknown>;
}

/** manifest.json: the build record plus every artifact's name, size and sha256. */
export function manifestBytes(manifest: Record<string, unknown>, artifacts: readonly Omit<PublishedFile, "path">[]): Buffer {
  return Buffer.from(JSON.stringify({ ...manifest, artifacts: artifacts.map(({ name, size, sha256 }) => ({ name, size, sha256 })) }, null, 2) + "\n");
}

/** Name, size and sha256 of artifacts still in the cache, for a manifest (and to publish them from there). */
export async function describeFiles(files: readonly CopiedFile[]): Promise<Required<CopiedFile>[]> {
  return Promise.all(
    files.map(async (f) => (f.size !== undefined && f.sha256 !== undefined ? { ...f, size: f.size, sha256: f.sha256 } : { ...f, size: (await stat(f.from)).size, sha256: await sha256File(f.from) })),
  );
}

/** Name, size and sha256 of content made in memory, for a manifest. */
export function describeData(files: readonly { name: string; data: Buffer }[]): Omit<PublishedFile, "path">[] {
  return files.map(({ name, data }) => ({ name, size: data.length, sha256: createHash("sha256").update(data).digest("hex") }));
}

/**
 * A directory beside `outDir` to make something for it in, named for this process: publish sweeps what
 * killed builds left there.
 */
export async function stagingDir(outDir: string, what: string): Promise<string> {
  const dir = join(dirname(outDir), ownedName(`.${basename(outDir)}.${what}`));
  await mkdir(dir, { recursive: true });
  return dir;
}

/**
 * Whether `outDir` already holds exactly these outputs as a previous build published them: the same
 * manifest, the same files (and nothing else but the unlisted ones), each of its size and none changed
 * since the manifest was written (ctime, which no program can set back).
 */
async function alreadyPublished(outDir: string, manifest: Buffer, files: ReadonlyMap<string, number>, unlisted: ReadonlySet<string>): Promise<boolean> {
  const old = await readFile(join(outDir, FILES.manifest)).catch(() => undefined);
  if (!old?.equals(manifest)) return false;
  const written = (await stat(join(outDir, FILES.manifest))).ctimeMs;
  const found = (await readdir(outDir, { recursive: true, withFileTypes: true })).filter((e) => !e.isDirectory());
  if (found.length !== files.size + unlisted.size + 1) return false;
  for (const entry of found) {
    const name = relative(outDir, join(entry.parentPath, entry.name));
    if (name === FILES.manifest || unlisted.has(name)) continue;
    const info = entry.isFile() ? await stat(join(outDir, name)) : undefined;
    if (!info || info.size !== files.get(name) || info.ctimeMs > written) return false;
  }
  return true;
}

/** The files of what is moved in: a file as it is, a directory (pxe/) as the files below it. */
async function filesOf(moves: readonly { name: string; from: string }[]): Promise<{ name: string; from: string }[]> {
  const files = await Promise.all(
    moves.map(async (move) => {
      if (!(await stat(move.from)).isDirectory()) return [move];
      const below = (await readdir(move.from, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
      return below.map((e) => ({ name: join(move.name, relative(move.from, join(e.parentPath, e.name))), from: join(e.parentPath, e.name) }));
    }),
  );
  return files.flat();
}

/**
 * Writes the outputs into `outDir` (e.g. _out/minimal) with a manifest.json; the directory is assembled
 * under a temporary name and renamed into place. When it already holds the same outputs, nothing is
 * written at all: the files keep their inodes and times (the report too: it tells of the build that made them).
 */
export async function publish(outDir: string, outputs: OutputSet): Promise<PublishedFile[]> {
  await removeOrphans(dirname(outDir));
  const moves = outputs.moves ?? [];
  const moved = await filesOf(moves);
  const unlisted = new Set(outputs.contents.filter((c) => c.unlisted).map((c) => c.name));
  const topLevel = (f: { name: string }) => !f.name.includes("/");
  const described = [...(await describeFiles([...outputs.copies, ...moved].filter(topLevel))), ...describeData(outputs.contents.filter(topLevel))].map(
    ({ name, size, sha256 }) => ({ name, size, sha256 }),
  );
  const manifest = manifestBytes(outputs.manifest, described.filter((d) => !unlisted.has(d.name)));
  // every file the directory must hold (the unlisted ones aside), with its size
  const sizes = new Map(described.filter((d) => !unlisted.has(d.name)).map((d) => [d.name, d.size]));
  for (const { name, from } of [...outputs.copies, ...moved].filter((f) => !topLevel(f))) sizes.set(name, (await stat(from)).size);
  for (const { name, data } of outputs.contents.filter((f) => !topLevel(f))) sizes.set(name, data.length);
  const result = described.map((d) => ({ ...d, path: join(outDir, d.name) }));
  const removeMoved = async () => {
    for (const { from } of moves) await rm(dirname(from), { recursive: true, force: true });
  };
  if (await alreadyPublished(outDir, manifest, sizes, unlisted)) {
    await removeMoved();
    // the unlisted files kept are the previous build's
    const kept = await describeFiles([...unlisted].filter((name) => !name.includes("/")).map((name) => ({ name, from: join(outDir, name) })));
    return result.map((r) => {
      const previous = kept.find((k) => k.name === r.name);
      return previous ? { ...r, size: previous.size, sha256: previous.sha256 } : r;
    });
  }
  const tmp = await stagingDir(outDir, "publishing");
  try {
    const place = async (name: string): Promise<string> => {
      await mkdir(dirname(join(tmp, name)), { recursive: true });
      return join(tmp, name);
    };
    for (const { name, from } of outputs.copies) await copyFile(from, await place(name));
    for (const { name, data } of outputs.contents) await writeFile(await place(name), data);
    // synced below, with the rest of the directory
    for (const { name, from } of moves) await moveIntoPlace(from, join(tmp, name), { sync: false });
    await writeFile(join(tmp, FILES.manifest), manifest);
    await moveIntoPlace(tmp, outDir);
    return result;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    await removeMoved();
  }
}
