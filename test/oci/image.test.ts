import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { test } from "node:test";
import { execa } from "execa";
import { digestOf } from "../../src/oci/image.ts";
import { installerImage } from "../../src/oci/installer.ts";
import { writeTar } from "../../src/oci/tar.ts";

const input = (data: string) => ({
  arches: [{ arch: "x86_64", files: [{ name: "uki.efi", data: Buffer.from(data) }, { name: "vmlinuz", data: Buffer.alloc(1500, 7) }] }],
  epoch: 1_700_000_000,
  version: "1.2.3",
  revision: "0123456789abcdef0123456789abcdef01234567",
  refName: "1.2.3",
});

test("the tar writer sorts entries, owns them by 0:0 without names, stamps one mtime, and GNU tar reads it back", async () => {
  const tar = writeTar(
    [
      { path: "b/file", type: "file", mode: 0o644, data: Buffer.from("bee\n") },
      { path: "a", type: "dir", mode: 0o755 },
      { path: "b", type: "dir", mode: 0o755 },
      { path: `${"deep/".repeat(30)}name`, type: "file", mode: 0o600, data: Buffer.alloc(600, 1) },
    ],
    1_700_000_000,
  );
  assert.equal(tar.length % 512, 0);
  const listing = (await execa("tar", ["--numeric-owner", "--full-time", "-tvf", "-"], { input: tar, env: { TZ: "UTC" } })).stdout.trim().split("\n");
  assert.deepEqual(
    listing.map((l) => l.split(/\s+/).at(-1)),
    ["a/", "b/", "b/file", `${"deep/".repeat(30)}name`],
  );
  for (const line of listing) assert.match(line, /^\S+ 0\/0\s+\d+ 2023-11-14 22:13:20 /);
  assert.match(listing[2] ?? "", /^-rw-r--r-- 0\/0\s+4 /);
  assert.equal((await execa("tar", ["-xOf", "-", "b/file"], { input: tar })).stdout, "bee");
  assert.throws(() => writeTar([{ path: "x", type: "dir", mode: 0o755 }, { path: "x", type: "dir", mode: 0o755 }], 0), /'x' appears twice/);
  assert.throws(() => writeTar([{ path: "y".repeat(300), type: "dir", mode: 0o755 }], 0), /too long/);
});

test("the installer image is a pure function of its inputs: same inputs, same digests; other content, other digests", () => {
  const one = installerImage(input("uki"));
  const two = installerImage(input("uki"));
  assert.equal(one.index.descriptor.digest, two.index.descriptor.digest);
  assert.deepEqual(one.tar, two.tar);
  assert.notEqual(installerImage(input("other uki")).index.descriptor.digest, one.index.descriptor.digest);
  assert.equal(one.index.descriptor.digest, digestOf(one.index.data));
});

test("the installer image's config, manifest and index carry the epoch and the standard annotations", () => {
  const image = installerImage(input("uki"));
  const blobs = new Map(image.files.map((f) => [f.path, f.data]));
  const index = JSON.parse(image.index.data.toString()) as { manifests: { digest: string; platform: { architecture: string; os: string } }[]; annotations: Record<string, string> };
  assert.deepEqual(index.annotations, {
    "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
    "org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
    "org.opencontainers.image.title": "bronze installer",
    "org.opencontainers.image.version": "1.2.3",
  });
  assert.deepEqual(index.manifests[0]?.platform, { architecture: "amd64", os: "linux" });
  const manifest = JSON.parse(String(blobs.get(`blobs/${index.manifests[0]?.digest.replace(":", "/") ?? ""}`))) as { config: { digest: string }; layers: { digest: string }[] };
  const config = JSON.parse(String(blobs.get(`blobs/${manifest.config.digest.replace(":", "/")}`))) as { created: string; rootfs: { diff_ids: string[] } };
  assert.equal(config.created, "2023-11-14T22:13:20Z");
  const layer = blobs.get(`blobs/${manifest.layers[0]?.digest.replace(":", "/") ?? ""}`);
  assert.ok(layer);
  assert.equal(digestOf(gunzipSync(layer)), config.rootfs.diff_ids[0], "diff_id is the uncompressed layer's digest");
  const layout = JSON.parse(String(blobs.get("index.json"))) as { manifests: { digest: string; annotations: Record<string, string> }[] };
  assert.equal(layout.manifests[0]?.digest, image.index.descriptor.digest);
  assert.equal(layout.manifests[0]?.annotations["org.opencontainers.image.ref.name"], "1.2.3");
});
