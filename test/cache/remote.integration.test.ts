import assert from "node:assert/strict";
import { chmod, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { CACHE_MEDIA_TYPES, KEY_ANNOTATION, readCacheManifest } from "../../src/cache/artifact.ts";
import { RegistryCache } from "../../src/cache/remote.ts";
import { treeContent } from "../../src/core/hash.ts";
import type { EntryRecord } from "../../src/core/store.ts";
import { loadSigningKey } from "../../src/oci/cosign.ts";
import { findPrivateKeys } from "../../src/kernel/key-scan.ts";
import { getBlob, getManifest, putManifest, RegistryClient } from "../../src/registry/client.ts";
import { parseReference } from "../../src/registry/reference.ts";
import { startBuild } from "../helpers/build.ts";
import { ecKeyPair } from "../helpers/extension.ts";
import { startRegistry } from "../helpers/registry.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

const OUT = join(PROJECT_ROOT, "_out", "minimal");
const installerDigest = async () => (JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as { installer: { indexDigest: string } }).installer.indexDigest;
/** The steps a build names in its "pushed"/"pulled" lines. */
const steps = (output: string, verb: string) => [...output.matchAll(new RegExp(`cache: (.+) \\(([0-9a-f]{12})\\) ${verb} `, "g"))].map((m) => ({ step: m[1]!, key: m[2]! }));

/** A fresh registry filled by a first machine: everything it has (cached here or built now) goes there. */
async function filledCache(extra: readonly string[] = []): Promise<{ repository: string; pushed: { step: string; key: string }[]; tags: string[] }> {
  const registry = await startRegistry();
  const repository = `${registry.address}/bronze/cache`;
  const first = await startBuild("minimal", undefined, ["--cache-to", repository, "--plain-http", ...extra]);
  assert.equal(first.exitCode, 0, first.all);
  const tags = (JSON.parse((await execa("skopeo", ["list-tags", "--tls-verify=false", `docker://${repository}`])).stdout) as { Tags: string[] }).Tags;
  return { repository, pushed: steps(first.all, "pushed to"), tags };
}

test("a second machine (a fresh cache) builds the minimal profile from the shared registry cache with zero steps run", { timeout: 30 * 60_000 }, async () => {
  const { repository, pushed, tags } = await filledCache();
  assert.deepEqual(pushed.map((p) => p.step).sort(), ["initramfs", "installer", "kernel minimal", "package argp", "package crun", "package e2fsprogs", "package init", "package libcap", "package libseccomp", "package linux-headers", "package musl", "package yajl", "rootfs", "uki"]);
  const digest = await installerDigest();

  // an independent client sees an OCI artifact tagged by the input hash
  const kernel = pushed.find((p) => p.step === "kernel minimal")!;
  const kernelTag = tags.find((t) => t.startsWith(kernel.key))!;
  assert.equal(tags.length, pushed.length, "a tag per step pushed");
  const manifest = JSON.parse((await execa("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${repository}:${kernelTag}`])).stdout) as { artifactType: string; annotations: Record<string, string>; layers: unknown[] };
  assert.equal(manifest.artifactType, CACHE_MEDIA_TYPES.artifact);
  assert.equal(manifest.annotations[KEY_ANNOTATION], kernelTag);
  assert.equal(manifest.layers.length, 1, "kernel and modules are one unit");

  // pushing again sends nothing
  const again = await startBuild("minimal", undefined, ["--cache-to", repository, "--plain-http"]);
  assert.equal(again.exitCode, 0, again.all);
  assert.deepEqual(steps(again.all, "pushed to"), []);

  // the second machine
  const fresh = await tempDir("shared-cache-");
  const second = await startBuild("minimal", fresh, ["--cache-from", repository, "--plain-http"]);
  assert.equal(second.exitCode, 0, second.all);
  assert.match(second.all, /0 build step\(s\) ran \(everything from cache\)/);
  assert.deepEqual(steps(second.all, "pulled from").map((p) => p.step).sort(), pushed.map((p) => p.step).sort());
  assert.equal(await installerDigest(), digest, "the same installer, byte for byte");
  assert.deepEqual(await findPrivateKeys([fresh]), [], "no private key came with the entries");
  // the keys take the pinned digests: a package served from the cache fetched no source
  assert.deepEqual(await readdir(join(fresh, "sources")).catch(() => []), [], "no source fetched");
});

test("an entry filed under another step's input hash is refused on the way in", { timeout: 10 * 60_000 }, async () => {
  const { repository, pushed, tags } = await filledCache();
  const tagOf = (step: string) => tags.find((t) => t.startsWith(pushed.find((p) => p.step === step)!.key))!;
  // the init package's entry, put under the tag of musl's: a registry that serves the wrong thing
  const ref = parseReference(repository);
  const client = new RegistryClient(ref.registry, { scheme: "http", attempts: 1, backoffMs: 0 });
  const init = await getManifest(client, ref, tagOf("package init"));
  await putManifest(client, ref, tagOf("package musl"), init.mediaType, init.data);
  const second = await startBuild("minimal", await tempDir("shared-cache-"), ["--cache-from", repository, "--plain-http"]);
  assert.equal(second.exitCode, 1, second.all);
  assert.match(second.all, new RegExp(`cache entry ${tagOf("package musl").slice(0, 12)} in ${repository.replaceAll(".", "\\.")}: it is the entry of key ${tagOf("package init")}`));
});

/** The entry of `tag` replaced by a whole, valid one of the same key (its record's digest matches its files), signed by `key`. */
async function replaceEntry(repository: string, tag: string, signingKey: string, dir: string): Promise<void> {
  const ref = parseReference(repository);
  const client = new RegistryClient(ref.registry, { scheme: "http", attempts: 1, backoffMs: 0 });
  const real = await getManifest(client, ref, tag);
  const layout = readCacheManifest(real.data, tag);
  const record = JSON.parse((await getBlob(client, ref, layout.record.digest, layout.record.size)).toString()) as EntryRecord;
  const deleted = await client.request("DELETE", `/v2/${ref.repository}/manifests/${real.digest}`, `repository:${ref.repository}:delete`);
  assert.equal(deleted.status, 202, "the registry deletes the real entry");
  const fake = join(dir, "fake-entry");
  await mkdir(join(fake, "out", "usr", "sbin"), { recursive: true });
  await writeFile(join(fake, "out", "usr", "sbin", "init"), "#!/bin/sh\necho pwned\n");
  await chmod(join(fake, "out", "usr", "sbin", "init"), 0o755);
  await writeFile(join(fake, "record.json"), JSON.stringify({ ...record, content: await treeContent(join(fake, "out")) }));
  await new RegistryCache(client, ref, () => undefined, { key: await loadSigningKey(signingKey) }).push(tag, fake);
}

test("signed entries: a machine trusting the CI's key takes them all; one replaced by a valid entry signed by another key is not used but built there", { timeout: 10 * 60_000 }, async () => {
  const dir = await tempDir("cache-keys-");
  const [ci, attacker] = [await ecKeyPair(dir, "ci"), await ecKeyPair(dir, "attacker")];
  const { repository, pushed, tags } = await filledCache(["--cache-sign-key", ci.key]);
  assert.equal(tags.filter((t) => t.endsWith(".sig")).length, pushed.length, "a signature beside every entry");
  const digest = await installerDigest();

  const trusting = await startBuild("minimal", await tempDir("shared-cache-"), ["--cache-from", repository, "--plain-http", "--cache-trusted-key", ci.pub]);
  assert.equal(trusting.exitCode, 0, trusting.all);
  assert.match(trusting.all, /0 build step\(s\) ran \(everything from cache\)/);

  const initTag = tags.find((t) => t.startsWith(pushed.find((p) => p.step === "package init")!.key))!;
  await replaceEntry(repository, initTag, attacker.key, dir);
  // what the poisoned entry does to a machine that checks nothing: it takes it
  const careless = await tempDir("shared-cache-");
  const unchecked = await startBuild("minimal", careless, ["--cache-from", repository, "--plain-http"]);
  assert.match(unchecked.all, /WARNING: entries from --cache-from are used without checking who made them/);
  assert.match((await execa("grep", ["-rl", "pwned", careless], { reject: false })).stdout, /usr\/sbin\/init/, "the unchecked build took the attacker's init");

  const checking = await tempDir("shared-cache-");
  const second = await startBuild("minimal", checking, ["--cache-from", repository, "--plain-http", "--cache-trusted-key", ci.pub]);
  assert.equal(second.exitCode, 0, second.all);
  assert.match(second.all, new RegExp(`cache: entry ${initTag.slice(0, 12)} in ${repository.replaceAll(".", "\\.")} is not used: no signature by a trusted key \\(a signature does not verify with any trusted key`));
  assert.match(second.all, /1 build step\(s\) ran: package init/);
  assert.equal((await execa("grep", ["-rl", "pwned", checking], { reject: false })).stdout, "", "nothing of the attacker's entry in the checking machine's cache");
  assert.equal(await installerDigest(), digest, "the same installer as the CI's");
});
