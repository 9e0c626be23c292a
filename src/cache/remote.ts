import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { zstdDecompressSync } from "node:zlib";
import { BronzeError } from "../core/errors.ts";
import type { EntryRecord, RemoteStore } from "../core/store.ts";
import { readTree } from "../oci/dir-read.ts";
import { writeEntries } from "../oci/dir-write.ts";
import { toTarEntry } from "../oci/tar.ts";
import { readTar } from "../oci/tar-read.ts";
import type { KeyObject } from "node:crypto";
import { signatureTag } from "../oci/cosign.ts";
import { cosignSignatureProblem, putCosignSignature } from "../registry/cosign-tag.ts";
import { getBlob, getManifest, hasManifest, headManifest, putManifest, type RegistryClient } from "../registry/client.ts";
import { pushBlob } from "../registry/upload.ts";
import type { Reference } from "../registry/reference.ts";
import { cacheArtifact, readCacheManifest } from "./artifact.ts";

/** Writes a pulled tree: relative paths only, nothing through a symlink, only files, directories and symlinks. */
export async function writeTree(archive: Buffer, into: string, what: string): Promise<void> {
  await writeEntries(await readTar(archive), into, what);
}

/** How a shared cache's entries are signed (at --cache-to) and which signers are trusted (at --cache-from). */
export interface CacheSigning {
  /** signs every entry this build sends, as cosign signs an image (a sha256-<hex>.sig tag beside it) */
  key?: KeyObject;
  /** when given, an entry without a valid signature by one of these is a miss, never used */
  trusted?: readonly KeyObject[];
}

/** A repository of a registry holding cache entries, each tagged by its input key. */
export class RegistryCache {
  readonly client: RegistryClient;
  readonly ref: Reference;
  private readonly log: (line: string) => void;
  private readonly signing: CacheSigning;

  constructor(client: RegistryClient, ref: Reference, log: (line: string) => void, signing: CacheSigning = {}) {
    this.client = client;
    this.ref = ref;
    this.log = log;
    this.signing = signing;
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
    const distrust = this.signing.trusted && (await cosignSignatureProblem(this.client, this.ref, manifest.digest, this.signing.trusted));
    if (distrust) {
      this.log(`cache: entry ${key.slice(0, 12)} in ${this.name} is not used: ${distrust}; built here instead`);
      return false;
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

  /** Sends one blob unless the registry has it; the bytes sent. */
  private sendBlob(blob: { descriptor: { digest: string }; data: Buffer }): Promise<number> {
    return pushBlob(this.client, this.ref, blob.descriptor.digest, async () => blob.data, { chunkSize: 8 * 1024 * 1024 });
  }

  /**
   * Pushes the entry in `entryDir` unless the registry has it; with a signing key its signature first, so
   * that no tag of this build's is ever there without it; the tag (the key) goes last.
   */
  async push(key: string, entryDir: string): Promise<void> {
    // one question when the entry is there (and signed, when this build signs): nothing is read or packed
    const there = await headManifest(this.client, this.ref, key);
    if (there.present && (!this.signing.key || (there.digest && (await hasManifest(this.client, this.ref, signatureTag(there.digest)))))) return;
    const recordJson = await readFile(join(entryDir, "record.json"));
    const record = JSON.parse(recordJson.toString("utf8")) as EntryRecord;
    const artifact = cacheArtifact(key, record.step, recordJson, (await readTree(join(entryDir, "out"))).map(toTarEntry));
    const digest = artifact.manifest.descriptor.digest;
    // an entry there but unsigned is signed only when it is this very entry: no one else's is vouched for
    if (there.present && there.digest !== digest) {
      this.log(`cache: ${record.step} (${key.slice(0, 12)}) in ${this.name} is another entry than this build's (${there.digest ?? "no digest"}): not signed`);
      return;
    }
    let sent = 0;
    if (this.signing.key) sent += await putCosignSignature(this.client, this.ref, digest, this.signing.key, this.name);
    if (!there.present) {
      for (const blob of [artifact.record, artifact.tree]) sent += await this.sendBlob(blob);
      await putManifest(this.client, this.ref, key, artifact.manifest.descriptor.mediaType, artifact.manifest.data);
    }
    this.log(`cache: ${record.step} (${key.slice(0, 12)}) ${there.present ? "signed in" : "pushed to"} ${this.name}${this.signing.key ? " (signed)" : ""}, ${sent} bytes sent`);
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
