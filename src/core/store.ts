import { cp, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { moveIntoPlace } from "./atomic.ts";
import { treeContent } from "./hash.ts";
import { statFingerprint, type Fingerprint } from "./fingerprint.ts";
import { ownedName, removeOrphans } from "./ownership.ts";

/** What a cache entry records about the step that produced it. */
export interface EntryRecord {
  step: string;
  key: string;
  inputs: Record<string, unknown>;
  durationMs: number;
  /** step-specific facts, e.g. the kernel release or the module certificate fingerprint */
  facts: Record<string, string>;
  /** the digest of out/ (core/hash treeDigest): an entry whose files do not match it is never served */
  content?: { digest: string; files: number };
}

/** Why an entry cannot be served, or undefined when its files are what it recorded. */
export async function entryFault(entry: StoreEntry): Promise<string | undefined> {
  const recorded = entry.record.content;
  if (!recorded) return "it records no digest of its files (made by an older bronze)";
  const found = await treeContent(entry.dir).catch(() => undefined);
  if (!found) return "its out/ directory is missing";
  if (found.files !== recorded.files) return `it holds ${found.files} file(s), its record says ${recorded.files}`;
  if (found.digest !== recorded.digest) return `corrupt: its files' digest is ${found.digest}, its record says ${recorded.digest}`;
  return undefined;
}

/** The cache directory when no option names one: $BRONZE_CACHE, else .cache/bronze in the project. */
export function defaultCacheDir(projectRoot: string): string {
  return process.env.BRONZE_CACHE ?? join(projectRoot, ".cache", "bronze");
}

/** Beside record.json: the stat fingerprint of the entry when its digest was last checked (see core/fingerprint). */
export const CHECKED = "checked";

/** The stat fingerprint of an entry's files (record.json and out/), named relative to the entry. */
function entryFingerprint(dir: string): Promise<Fingerprint> {
  const checked = join(dir, CHECKED);
  return statFingerprint({ walk: [dir] }, { label: (path) => relative(dir, path), skip: (path) => path === checked });
}

/** Where a cache tells of what it discarded, unless its owner says otherwise. */
export const warnOnConsole = (line: string): void => console.error(`bronze: warning: ${line}`);

export interface StoreEntry {
  key: string;
  /** directory holding the step's output files */
  dir: string;
  record: EntryRecord;
}

/** A shared cache beyond this machine's (an OCI registry): asked on a miss, sent every entry a build uses. */
export interface RemoteStore {
  /** fills `into` with record.json and out/ when the remote has `key` */
  fetch(key: string, into: string): Promise<boolean>;
  publish(key: string, entryDir: string): Promise<void>;
}

/**
 * Content-addressed store of step outputs: one directory per input key,
 * written under a temporary name and renamed into place when complete.
 */
export class Store {
  readonly root: string;
  remote?: RemoteStore;
  /** told of every entry that was found corrupt and discarded */
  warn: (line: string) => void = warnOnConsole;
  /** how many times an entry's files were hashed (the others were unchanged since their last check) */
  digestChecks = 0;
  /** the directories of the entries this store served or made, in this process */
  readonly used = new Set<string>();

  constructor(root: string) {
    this.root = root;
  }

  private tmpPath(key: string): string {
    return join(this.root, "tmp", ownedName(key));
  }

  /** Moves a complete entry into place, on disk first: readers see all of it or none, even after a crash. */
  private async commit(tmp: string, key: string): Promise<string> {
    const final = this.entryPath(key);
    await mkdir(join(this.root, "store"), { recursive: true });
    await moveIntoPlace(tmp, final);
    return final;
  }

  private entryPath(key: string): string {
    return join(this.root, "store", key);
  }

  private async readEntry(key: string, path: string): Promise<StoreEntry | undefined> {
    try {
      const record = JSON.parse(await readFile(join(path, "record.json"), "utf8")) as EntryRecord;
      return { key, dir: join(path, "out"), record };
    } catch {
      return undefined;
    }
  }

  private local(key: string): Promise<StoreEntry | undefined> {
    return this.readEntry(key, this.entryPath(key));
  }

  /** A temporary entry directory, named for this process; those of killed builds are removed first. */
  private async newTmp(key: string): Promise<string> {
    await removeOrphans(join(this.root, "tmp"));
    const tmp = this.tmpPath(key);
    await mkdir(tmp, { recursive: true });
    return tmp;
  }

  /** Whether a build has made this store (its entry directory is there). */
  async exists(): Promise<boolean> {
    return (await stat(join(this.root, "store")).catch(() => undefined))?.isDirectory() ?? false;
  }

  /** Every entry of this machine's store. */
  async entries(): Promise<StoreEntry[]> {
    const keys = await readdir(join(this.root, "store")).catch(() => [] as string[]);
    const found = await Promise.all(keys.map((key) => this.local(key)));
    return found.filter((e): e is StoreEntry => e !== undefined);
  }

  /** Copies an entry of another store into this one, as it is. */
  async adopt(entry: StoreEntry): Promise<void> {
    const tmp = this.tmpPath(entry.key);
    try {
      await cp(dirname(entry.dir), tmp, { recursive: true, preserveTimestamps: true });
      await this.commit(tmp, entry.key);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * The entry of `key` if its files are what it recorded; a corrupt one is discarded, named in a warning.
   * Its files are hashed when they changed since they were last found whole (see statFingerprint), or always (`full`).
   */
  private async verified(key: string, options: { dir?: string; where?: string; full?: boolean } = {}): Promise<StoreEntry | undefined> {
    const { dir = this.entryPath(key), where = "cache entry", full = false } = options;
    const entry = await this.readEntry(key, dir);
    if (!entry) return undefined;
    const seen = await entryFingerprint(dir);
    if (!full && seen.settled && seen.digest === (await readFile(join(dir, CHECKED), "utf8").catch(() => undefined))) return entry;
    this.digestChecks++;
    const fault = await entryFault(entry);
    if (!fault) {
      if (seen.settled) await writeFile(join(dir, CHECKED), seen.digest);
      return entry;
    }
    this.warn(`${where} ${key} (${entry.record.step}) discarded: ${fault}; the step runs again`);
    await rm(dir, { recursive: true, force: true });
    return undefined;
  }

  /** Checks every entry's files against its record, each one hashed; corrupt ones are discarded. */
  async verifyAll(): Promise<{ ok: number; discarded: string[] }> {
    const keys = await readdir(join(this.root, "store")).catch(() => [] as string[]);
    const discarded: string[] = [];
    let ok = 0;
    for (const key of keys) {
      if (await this.verified(key, { full: true })) ok++;
      else discarded.push(key);
    }
    return { ok, discarded };
  }

  /** The entry of `key`: from this machine's store, else from the remote one (then kept here); sent to the remote when it lacks it. */
  async lookup(key: string): Promise<StoreEntry | undefined> {
    let entry = await this.verified(key);
    if (!entry && this.remote) {
      const tmp = await this.newTmp(key);
      try {
        if ((await this.remote.fetch(key, tmp)) && (await this.verified(key, { dir: tmp, where: "shared cache entry", full: true }))) {
          await this.commit(tmp, key);
          entry = await this.local(key);
        }
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    }
    if (entry) {
      this.used.add(this.entryPath(key));
      await this.remote?.publish(key, this.entryPath(key));
    }
    return entry;
  }

  /** Runs `produce` on a fresh output directory and commits the result atomically. */
  async put(
    key: string,
    step: string,
    inputs: Record<string, unknown>,
    produce: (outDir: string) => Promise<Record<string, string>>,
  ): Promise<StoreEntry> {
    const started = Date.now();
    const tmp = await this.newTmp(key);
    await mkdir(join(tmp, "out"));
    try {
      const facts = await produce(join(tmp, "out"));
      const content = await treeContent(join(tmp, "out"));
      const record: EntryRecord = { step, key, inputs, durationMs: Date.now() - started, facts, content };
      await writeFile(join(tmp, "record.json"), JSON.stringify(record, null, 2) + "\n");
      const final = await this.commit(tmp, key);
      this.used.add(final);
      await this.remote?.publish(key, final);
      return { key, dir: join(final, "out"), record };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
}
