import { randomBytes } from "node:crypto";
import { cp, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/** What a cache entry records about the step that produced it. */
export interface EntryRecord {
  step: string;
  key: string;
  inputs: Record<string, unknown>;
  durationMs: number;
  /** step-specific facts, e.g. the kernel release or the module certificate fingerprint */
  facts: Record<string, string>;
}

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

  constructor(root: string) {
    this.root = root;
  }

  private tmpPath(key: string): string {
    return join(this.root, "tmp", `${key}.${randomBytes(6).toString("hex")}`);
  }

  /** Moves a complete entry into place: readers see all of it or none. */
  private async commit(tmp: string, key: string): Promise<string> {
    const final = this.entryPath(key);
    await mkdir(join(this.root, "store"), { recursive: true });
    await rm(final, { recursive: true, force: true });
    await rename(tmp, final);
    return final;
  }

  private entryPath(key: string): string {
    return join(this.root, "store", key);
  }

  private async local(key: string): Promise<StoreEntry | undefined> {
    const path = this.entryPath(key);
    try {
      const record = JSON.parse(await readFile(join(path, "record.json"), "utf8")) as EntryRecord;
      return { key, dir: join(path, "out"), record };
    } catch {
      return undefined;
    }
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

  /** The entry of `key`: from this machine's store, else from the remote one (then kept here); sent to the remote when it lacks it. */
  async lookup(key: string): Promise<StoreEntry | undefined> {
    let entry = await this.local(key);
    if (!entry && this.remote) {
      const tmp = this.tmpPath(key);
      try {
        if (await this.remote.fetch(key, tmp)) {
          await this.commit(tmp, key);
          entry = await this.local(key);
        }
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    }
    if (entry) await this.remote?.publish(key, this.entryPath(key));
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
    const tmp = this.tmpPath(key);
    await mkdir(join(tmp, "out"), { recursive: true });
    try {
      const facts = await produce(join(tmp, "out"));
      const record: EntryRecord = { step, key, inputs, durationMs: Date.now() - started, facts };
      await writeFile(join(tmp, "record.json"), JSON.stringify(record, null, 2) + "\n");
      const final = await this.commit(tmp, key);
      await this.remote?.publish(key, final);
      return { key, dir: join(final, "out"), record };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
}
