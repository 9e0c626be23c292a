import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ownedName, removeOrphans } from "../core/ownership.ts";
import { warnOnConsole } from "../core/store.ts";
import { treeWeight, type TreeWeight } from "../core/tree-size.ts";
import { moveIntoPlace } from "../core/atomic.ts";
import type { BuildContext } from "../core/context.ts";

/** What a compiled kernel tree records: how it was made, and what it weighs. */
export interface CompileRecord {
  key: string;
  /** the key of everything but the configuration: trees of one family can be recompiled into each other */
  family: string;
  /** what the compile key hashes; `config` is the merged settings it was compiled for */
  inputs: { config: string } & Record<string, unknown>;
  /** the compiled tree it was recompiled from, when it was */
  derivedFrom?: string;
  /** the resolved .config it was compiled with */
  config: string;
  /** regular files of the tree and their bytes: a lookup checks both */
  files: number;
  bytes: number;
  durationMs: number;
}

/** What pruning weighs: a compiled tree or an unpacked source. */
export interface Prunable {
  key: string;
  dir: string;
  bytes: number;
  usedMs: number;
}

/** A compiled kernel tree: objects and unsigned modules, mounted at /build to seal it. */
export interface CompiledTree {
  key: string;
  /** the directory the kernel build sees as /build (linux/, ext/, the certificate file) */
  tree: string;
  record: CompileRecord;
}

const RECORD = "record.json";
const TREE = "tree";
const GIB = 1024 ** 3;
/** Beyond this many differing settings a cold compile is as fast as a recompile, and surer. */
export const MAX_RECOMPILE_DISTANCE = 64;

async function readJson<T>(path: string): Promise<T | undefined> {
  const text = await readFile(path, "utf8").catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as T);
}

/** Marks an entry as just used: pruning removes the least recently used first. */
async function touch(path: string): Promise<void> {
  const now = new Date();
  await utimes(path, now, now);
}

/** Why a tree does not weigh what its record says (files and bytes), or undefined when it does. */
async function weightFault(tree: string, recorded: TreeWeight): Promise<string | undefined> {
  const found = await treeWeight(tree);
  if (!found.files) return "its tree is missing";
  if (found.files !== recorded.files || found.bytes !== recorded.bytes) {
    return `it holds ${found.files} file(s) of ${found.bytes} bytes, its record says ${recorded.files} of ${recorded.bytes}`;
  }
  return undefined;
}

/** How many settings lines one rendering has that the other lacks, both ways. */
export function settingsDistance(a: string, b: string): number {
  const left = new Set(a.split("\n").filter(Boolean));
  const right = new Set(b.split("\n").filter(Boolean));
  let distance = 0;
  for (const line of left) if (!right.has(line)) distance++;
  for (const line of right) if (!left.has(line)) distance++;
  return distance;
}

/** Room for a few compiled trees (minimal is about 1.5 GiB, default about 3 GiB). */
export const DEFAULT_COMPILE_CACHE_BYTES = 16 * GIB;

/** What the kernel steps build in: a build's context and this machine's compiled trees (never shared, never key material). */
export interface KernelContext extends BuildContext {
  compileCache: CompileCache;
}

/**
 * This machine's compiled kernel trees, by compile key. Never key material (the compile steps see no
 * key) and never shared through a registry: they are large, and only this machine's paths and tools fit them.
 */
export class CompileCache {
  readonly root: string;
  readonly maxBytes: number;
  /** where the committed trees are, one directory each */
  readonly treesDir: string;
  /** told of every tree that was found damaged and discarded */
  warn: (line: string) => void = warnOnConsole;

  /** where each kernel source is unpacked, one directory per sha256 */
  readonly sourcesDir: string;

  constructor(root: string, maxBytes = DEFAULT_COMPILE_CACHE_BYTES) {
    this.root = root;
    this.maxBytes = maxBytes;
    this.treesDir = join(root, "trees");
    this.sourcesDir = join(root, "sources");
  }

  /**
   * The source of `sha256` unpacked by `unpack` (into the directory it is given) once, then shared read-only:
   * checked like a compiled tree at each use, made again when damaged. Builds may read it while another one
   * finds it missing: the first to finish puts its copy in place, the others discard theirs.
   */
  async unpackedSource(sha256: string, unpack: (tree: string) => Promise<void>): Promise<string> {
    const final = join(this.sourcesDir, sha256);
    const tree = join(final, TREE);
    const recorded = await readJson<TreeWeight>(join(final, RECORD));
    if (recorded) {
      const fault = await weightFault(tree, recorded);
      if (!fault) {
        await touch(join(final, RECORD));
        return tree;
      }
      this.warn(`unpacked kernel source ${sha256} is damaged: ${fault}; unpacked again`);
      await rm(final, { recursive: true, force: true });
    }
    const made = await this.begin(`source-${sha256}`);
    try {
      await unpack(made.tree);
      await writeFile(join(made.dir, RECORD), JSON.stringify(await treeWeight(made.tree)) + "\n");
      await mkdir(this.sourcesDir, { recursive: true });
      await moveIntoPlace(made.dir, final, { whenPresent: "keep", sync: false });
    } finally {
      await rm(made.dir, { recursive: true, force: true });
    }
    return tree;
  }

  /** Removes the unpacked source of `sha256`: the next build that needs it unpacks it again. */
  async discardSource(sha256: string): Promise<void> {
    await rm(join(this.sourcesDir, sha256), { recursive: true, force: true });
  }

  private entryPath(key: string): string {
    return join(this.treesDir, key);
  }

  private async read(key: string): Promise<CompiledTree | undefined> {
    const dir = this.entryPath(key);
    const text = await readFile(join(dir, RECORD), "utf8").catch(() => undefined);
    if (!text) return undefined;
    return { key, tree: join(dir, TREE), record: JSON.parse(text) as CompileRecord };
  }

  /** The tree of `key` if it is whole, or undefined after discarding it with a warning. */
  private async intact(key: string, warn = this.warn): Promise<CompiledTree | undefined> {
    const found = await this.read(key);
    if (!found) return undefined;
    const fault = await weightFault(found.tree, found.record);
    if (!fault) return found;
    warn(`compiled kernel tree ${key} is damaged: ${fault}; discarded, the kernel compiles again`);
    await rm(this.entryPath(key), { recursive: true, force: true });
    return undefined;
  }

  /** The compiled tree of `key`, marked as just used (pruning removes the least recently used first). */
  async lookup(key: string): Promise<CompiledTree | undefined> {
    const found = await this.intact(key);
    if (found) {
      await touch(join(this.entryPath(key), RECORD));
    }
    return found;
  }

  /** Checks every tree as a lookup does; damaged ones are discarded. */
  async verifyAll(): Promise<{ ok: number; discarded: string[] }> {
    const keys = await readdir(this.treesDir).catch(() => [] as string[]);
    const discarded: string[] = [];
    for (const key of keys) if (!(await this.intact(key, () => undefined))) discarded.push(key);
    return { ok: keys.length - discarded.length, discarded };
  }

  /** The compiled tree of the same family whose settings are closest to `settings`, within MAX_RECOMPILE_DISTANCE. */
  async nearest(family: string, settings: string): Promise<CompiledTree | undefined> {
    let best: { entry: CompiledTree; distance: number } | undefined;
    for (const entry of await this.entries()) {
      if (entry.record.family !== family) continue;
      const distance = settingsDistance(entry.record.inputs.config, settings);
      if (distance <= MAX_RECOMPILE_DISTANCE && (!best || distance < best.distance)) best = { entry, distance };
    }
    return best?.entry;
  }

  /** Removes what compiles that were killed left behind; what cannot be removed yet is left for the next run. */
  async removeAbandoned(): Promise<void> {
    await removeOrphans(join(this.root, "tmp"));
  }

  /** A fresh directory to compile in, named for this process, and the tree in it that the build sees as /build. */
  async begin(key: string): Promise<{ dir: string; tree: string }> {
    await this.removeAbandoned();
    const dir = join(this.root, "tmp", ownedName(key.slice(0, 16)));
    await mkdir(join(dir, TREE), { recursive: true });
    return { dir, tree: join(dir, TREE) };
  }

  /** Moves a finished compile into place (readers see all of it or none), then keeps the cache within its bound. */
  async commit(dir: string, record: Omit<CompileRecord, "bytes" | "files">): Promise<CompiledTree> {
    const full: CompileRecord = { ...record, ...(await treeWeight(join(dir, TREE))) };
    await writeFile(join(dir, RECORD), JSON.stringify(full, null, 2) + "\n");
    const final = this.entryPath(record.key);
    await mkdir(this.treesDir, { recursive: true });
    await moveIntoPlace(dir, final, { sync: false });
    await this.prune(this.maxBytes, record.key);
    return { key: record.key, tree: join(final, TREE), record: full };
  }

  /** Every compiled tree, the most recently used first. */
  async entries(): Promise<(CompiledTree & { usedMs: number })[]> {
    const keys = await readdir(this.treesDir).catch(() => [] as string[]);
    const found = await Promise.all(
      keys.map(async (key) => {
        const entry = await this.read(key);
        if (!entry) return undefined;
        const { mtimeMs } = await stat(join(this.entryPath(key), RECORD));
        return { ...entry, usedMs: mtimeMs };
      }),
    );
    return found.filter((e) => e !== undefined).sort((a, b) => b.usedMs - a.usedMs);
  }

  /** Every unpacked source, as pruning weighs it. */
  private async unpackedSources(): Promise<Prunable[]> {
    const keys = await readdir(this.sourcesDir).catch(() => [] as string[]);
    const found = await Promise.all(
      keys.map(async (key) => {
        const record = join(this.sourcesDir, key, RECORD);
        const weight = await readJson<TreeWeight>(record);
        const used = await stat(record).catch(() => undefined);
        return weight && used ? { key, dir: join(this.sourcesDir, key), bytes: weight.bytes, usedMs: used.mtimeMs } : undefined;
      }),
    );
    return found.filter((e) => e !== undefined);
  }

  /**
   * Removes the least recently used compiled trees and unpacked sources until the rest fit in `maxBytes`;
   * `keep` (a compile key) is never removed.
   */
  async prune(maxBytes: number, keep?: string): Promise<Prunable[]> {
    const trees = (await this.entries()).map((e) => ({ key: e.key, dir: this.entryPath(e.key), bytes: e.record.bytes, usedMs: e.usedMs }));
    const all = [...trees, ...(await this.unpackedSources())].sort((a, b) => b.usedMs - a.usedMs);
    let total = 0;
    const removed: Prunable[] = [];
    for (const entry of all) {
      total += entry.bytes;
      if (total <= maxBytes || entry.key === keep) continue;
      await rm(entry.dir, { recursive: true, force: true });
      removed.push(entry);
      total -= entry.bytes;
    }
    return removed;
  }
}
