import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

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

/**
 * Content-addressed store of step outputs: one directory per input key,
 * written under a temporary name and renamed into place when complete.
 */
export class Store {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  private entryPath(key: string): string {
    return join(this.root, "store", key);
  }

  async lookup(key: string): Promise<StoreEntry | undefined> {
    const path = this.entryPath(key);
    try {
      const record = JSON.parse(await readFile(join(path, "record.json"), "utf8")) as EntryRecord;
      return { key, dir: join(path, "out"), record };
    } catch {
      return undefined;
    }
  }

  /** Runs `produce` on a fresh output directory and commits the result atomically. */
  async put(
    key: string,
    step: string,
    inputs: Record<string, unknown>,
    produce: (outDir: string) => Promise<Record<string, string>>,
  ): Promise<StoreEntry> {
    const started = Date.now();
    const tmp = join(this.root, "tmp", `${key}.${randomBytes(6).toString("hex")}`);
    await mkdir(join(tmp, "out"), { recursive: true });
    try {
      const facts = await produce(join(tmp, "out"));
      const record: EntryRecord = { step, key, inputs, durationMs: Date.now() - started, facts };
      await writeFile(join(tmp, "record.json"), JSON.stringify(record, null, 2) + "\n");
      const final = this.entryPath(key);
      await mkdir(join(this.root, "store"), { recursive: true });
      await rm(final, { recursive: true, force: true });
      await rename(tmp, final);
      return { key, dir: join(final, "out"), record };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
}
