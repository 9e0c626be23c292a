import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { zstdDecompressSync } from "node:zlib";
import { BronzeError } from "../core/errors.ts";
import type { EntryRecord, RemoteStore } from "../core/store.ts";
import { readTree } from "../oci/dir-read.ts";
import { writeEntries } from "../oci/dir-write.ts";
import { toTarEntry } from "../oci/tar.ts";
import { readTar } from "../oci/tar-read.ts";
import { getBlob, getManifest, hasManifest, putManifest, type RegistryClient } from "../registry/client.ts";
import { pushBlob } from "../registry/upload.ts";
import type { Reference } from "../registry/reference.ts";
import { cacheArtifact, readCacheManifest } from "./artifact.ts";

/** Writes a pulled tree: relative paths only, nothing through a symlink, only files, directories and symlinks. */
export async function writeTree(archive: Buffer, into: string, what: string): Promise<void> {
  await writeEntries(await readTar(archive), into, what);
}

/** A repository of a registry holding cache entries, each tagged by its input key. */
export class RegistryCache {
  readonly client: RegistryClient;
  readonly ref: Reference;
  private readonly log: (line: string) => void;

  constructor(client: RegistryClient, ref: Reference, log: (line: string) => void) {
    this.client = client;
    this.ref = ref;
    this.log = log;
  }

  get name(): string {
    return `${this.ref.registry}/${this.ref.repository}`;
  }

  has(key: string): Promise<boolean> {
    return hasManifest(this.client, this.ref, key);
  }

  /** Pulls the entry of `key` into `into` (record.json and out/), every blob checked against its digest. */
  async pull(key: string, into: string): Promise<boolean> {
    if (!(await this.has(key))) return false;
    const manifest = await getManifest(this.client, this.ref, key);
    const what = `cache entry ${key.slice(0, 12)} in ${this.name}`;
    let layout: ReturnType<typeof readCacheManifest>;
    try {
      layout = readCacheManifest(manifest.data, key);
    } catch (e) {
      throw new BronzeError(`${what}: ${(e as Error).message}; remove the tag or use another --cache-from`);
    }
    const recordData = await getBlob(this.client, this.ref, layout.record.digest, layout.record.size);
    const record = JSON.parse(recordData.toString("utf8")) as EntryRecord;
    if (record.key !== key) throw new BronzeError(`${what}: its record is for key ${record.key}`);
    const tree = await getBlob(this.client, this.ref, layout.tree.digest, layout.tree.size);
    await mkdir(join(into, "out"), { recursive: true });
    await writeTree(zstdDecompressSync(tree), join(into, "out"), what);
    await writeFile(join(into, "record.json"), recordData);
    this.log(`cache: ${record.step} (${key.slice(0, 12)}) pulled from ${this.name}, ${tree.length} bytes`);
    return true;
  }

  /** Pushes the entry in `entryDir` unless the registry has it; the tag (the key) goes last. */
  async push(key: string, entryDir: string): Promise<void> {
    if (await this.has(key)) return;
    const recordJson = await readFile(join(entryDir, "record.json"));
    const record = JSON.parse(recordJson.toString("utf8")) as EntryRecord;
    const artifact = cacheArtifact(key, record.step, recordJson, (await readTree(join(entryDir, "out"))).map(toTarEntry));
    let sent = 0;
    for (const blob of [artifact.record, artifact.tree]) {
      sent += await pushBlob(this.client, this.ref, blob.descriptor.digest, async () => blob.data, { chunkSize: 8 * 1024 * 1024 });
    }
    await putManifest(this.client, this.ref, key, artifact.manifest.descriptor.mediaType, artifact.manifest.data);
    this.log(`cache: ${record.step} (${key.slice(0, 12)}) pushed to ${this.name}, ${sent} bytes sent`);
  }
}

/** --cache-from and --cache-to: where misses are looked up, and where every entry of the build is sent. */
export function remoteStore(from: RegistryCache | undefined, to: RegistryCache | undefined): RemoteStore {
  return {
    fetch: async (key, into) => (from ? from.pull(key, into) : false),
    publish: async (key, entryDir) => {
      if (to) await to.push(key, entryDir);
    },
  };
}
