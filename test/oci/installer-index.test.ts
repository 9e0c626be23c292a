import assert from "node:assert/strict";
import { test } from "node:test";
import { InputError } from "../../src/core/errors.ts";
import { MEDIA_TYPES, type Descriptor } from "../../src/oci/image.ts";
import { installerIndex } from "../../src/oci/installer-index.ts";
import { installerImage, PROFILE_ID_ANNOTATION } from "../../src/oci/installer.ts";
import { REF_NAME_ANNOTATION } from "../../src/oci/layout.ts";
import { memoryLayout } from "../../src/oci/layout-read.ts";

/** A one-arch installer layout as bronze build writes it, in memory. */
function installer(arch: string, options: { version?: string; profile?: string } = {}) {
  const version = options.version ?? "1.2.3";
  const image = installerImage({
    arches: [{ arch, files: [{ name: "uki.efi", data: Buffer.from(`uki for ${arch}`) }] }],
    epoch: 1_700_000_000,
    version,
    refName: version,
    profile: { name: options.profile ?? "minimal", id: arch === "x86_64" ? "a".repeat(64) : "b".repeat(64) },
  });
  const blobs = image.files.filter((f) => f.path.startsWith("blobs/")).map((f) => ({ descriptor: { mediaType: "", digest: f.path.slice(6).replace("/", ":"), size: f.data.length } as Descriptor, data: f.data }));
  return { image, layout: memoryLayout(`${arch}.oci`, image.index.descriptor, blobs) };
}

test("an index over two installers keeps each image byte for byte, amd64 first, tagged with the version, without the per-arch profile ID", async () => {
  const [amd, arm] = [installer("x86_64"), installer("aarch64")];
  const merged = await installerIndex([arm.layout, amd.layout]);
  assert.deepEqual(merged.architectures, ["amd64", "arm64"]);
  const index = JSON.parse(merged.index.data.toString()) as { mediaType: string; manifests: Descriptor[]; annotations: Record<string, string> };
  assert.equal(index.mediaType, MEDIA_TYPES.index);
  assert.deepEqual(index.manifests, [amd.image.images[0]?.manifest.descriptor, arm.image.images[0]?.manifest.descriptor]);
  assert.equal(index.annotations["org.opencontainers.image.version"], "1.2.3");
  assert.equal(index.annotations[PROFILE_ID_ANNOTATION], undefined);
  const top = JSON.parse(merged.files.find((f) => f.path === "index.json")?.data.toString() ?? "{}") as { manifests: Descriptor[] };
  assert.deepEqual(top.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION]), ["1.2.3"]);
  for (const image of [amd, arm]) for (const blob of image.image.images[0]?.blobs ?? []) assert.ok(merged.files.some((f) => f.data.equals(blob.data)), blob.descriptor.digest);
  assert.deepEqual((await installerIndex([amd.layout, arm.layout])).tar, merged.tar, "the same bytes whatever the order given");
});

test("installers of different versions or profiles, one architecture twice, or a single installer are refused, naming them", async () => {
  const refused = (promise: Promise<unknown>, pattern: RegExp) => assert.rejects(promise, (e: unknown) => e instanceof InputError && pattern.test(e.message));
  await refused(installerIndex([installer("x86_64").layout, installer("aarch64", { version: "1.2.4" }).layout]), /aarch64\.oci: org\.opencontainers\.image\.version is '1\.2\.4', x86_64\.oci says '1\.2\.3'/);
  await refused(installerIndex([installer("x86_64").layout, installer("aarch64", { profile: "default" }).layout]), /dev\.bronze\.profile\.name is 'default'/);
  await refused(installerIndex([installer("x86_64").layout, installer("x86_64").layout]), /both hold the amd64 image; give each architecture once/);
  await refused(installerIndex([installer("x86_64").layout]), /at least two architectures/);
});
