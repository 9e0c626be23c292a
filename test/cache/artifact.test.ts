import assert from "node:assert/strict";
import { test } from "node:test";
import { zstdDecompressSync } from "node:zlib";
import { cacheArtifact, CACHE_MEDIA_TYPES, KEY_ANNOTATION, readCacheManifest } from "../../src/cache/artifact.ts";
import { readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeTree } from "../../src/cache/remote.ts";
import { readTar } from "../../src/oci/tar-read.ts";
import { writeTar, type TarEntry } from "../../src/oci/tar.ts";
import { tempDir } from "../helpers/tmp.ts";

const key = "a".repeat(64);
const record = Buffer.from(JSON.stringify({ step: "package musl", key }));
const tree = [
  { path: "usr", type: "dir" as const, mode: 0o755 },
  { path: "usr/lib", type: "dir" as const, mode: 0o755 },
  { path: "usr/lib/libc.so", type: "file" as const, mode: 0o755, data: Buffer.from("\x7fELF") },
  { path: "usr/lib/ld-musl-x86_64.so.1", type: "symlink" as const, target: "libc.so" },
];

test("a cache entry becomes the same OCI artifact every time: record as config, the tree as one zstd tar layer", async () => {
  const one = cacheArtifact(key, "package musl", record, tree);
  const two = cacheArtifact(key, "package musl", record, [...tree].reverse());
  assert.equal(one.manifest.descriptor.digest, two.manifest.descriptor.digest);
  const manifest = JSON.parse(one.manifest.data.toString()) as { artifactType: string; config: { mediaType: string }; layers: { mediaType: string }[]; annotations: Record<string, string> };
  assert.equal(manifest.artifactType, CACHE_MEDIA_TYPES.artifact);
  assert.equal(manifest.config.mediaType, CACHE_MEDIA_TYPES.record);
  assert.deepEqual(manifest.layers.map((l) => l.mediaType), [CACHE_MEDIA_TYPES.tree]);
  assert.equal(manifest.annotations[KEY_ANNOTATION], key);
  const entries = await readTar(zstdDecompressSync(one.tree.data));
  assert.deepEqual(entries.map((e) => [e.path, e.type, e.mode.toString(8)]), [
    ["usr", "dir", "755"],
    ["usr/lib", "dir", "755"],
    ["usr/lib/ld-musl-x86_64.so.1", "symlink", "777"],
    ["usr/lib/libc.so", "file", "755"],
  ]);
  assert.deepEqual(readCacheManifest(one.manifest.data, key), {
    record: { digest: one.record.descriptor.digest, size: record.length },
    tree: { digest: one.tree.descriptor.digest, size: one.tree.data.length },
  });
});

test("a manifest that is not the entry of the asked key is refused with the reason", () => {
  const artifact = cacheArtifact(key, "package musl", record, tree);
  assert.throws(() => readCacheManifest(artifact.manifest.data, "b".repeat(64)), /it is the entry of key a{64}, not of b{64}/);
  const edit = (change: (m: Record<string, unknown>) => void) => {
    const m = JSON.parse(artifact.manifest.data.toString()) as Record<string, unknown>;
    change(m);
    return Buffer.from(JSON.stringify(m));
  };
  assert.throws(() => readCacheManifest(edit((m) => delete m.artifactType), key), /artifact type \(none\) is not a bronze cache entry/);
  assert.throws(() => readCacheManifest(edit((m) => (m.layers = [])), key), /not a record and one tree/);
  assert.throws(() => readCacheManifest(edit((m) => ((m.config as Record<string, unknown>).digest = "md5:00")), key), /no valid digest/);
});

test("a pulled tree is written only below its directory: no '..', no absolute path, nothing through a symlink", async () => {
  const into = await tempDir();
  await writeTree(writeTar(tree, 0), join(into, "ok"), "entry");
  assert.equal(await readlink(join(into, "ok", "usr/lib/ld-musl-x86_64.so.1")), "libc.so");
  assert.equal(((await stat(join(into, "ok", "usr/lib/libc.so"))).mode & 0o777).toString(8), "755");
  const evil = (entries: TarEntry[]) => writeTree(writeTar(entries, 0), join(into, "evil"), "cache entry x");
  await assert.rejects(evil([{ path: "../escape", type: "file", mode: 0o644, data: Buffer.from("x") }]), /cache entry x: refusing path '..\/escape'/);
  await assert.rejects(evil([{ path: "out", type: "symlink", target: "/etc" }, { path: "out/passwd", type: "file", mode: 0o644, data: Buffer.from("x") }]), /'out\/passwd' lies under a symlink/);
});
