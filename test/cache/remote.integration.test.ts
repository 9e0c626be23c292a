import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { CACHE_MEDIA_TYPES, KEY_ANNOTATION } from "../../src/cache/artifact.ts";
import { findPrivateKeys } from "../../src/kernel/key-scan.ts";
import { getManifest, putManifest, RegistryClient } from "../../src/registry/client.ts";
import { parseReference } from "../../src/registry/reference.ts";
import { startBuild } from "../helpers/build.ts";
import { startRegistry } from "../helpers/registry.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

const OUT = join(PROJECT_ROOT, "_out", "minimal");
const installerDigest = async () => (JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as { installer: { indexDigest: string } }).installer.indexDigest;
/** The steps a build names in its "pushed"/"pulled" lines. */
const steps = (output: string, verb: string) => [...output.matchAll(new RegExp(`cache: (.+) \\(([0-9a-f]{12})\\) ${verb} `, "g"))].map((m) => ({ step: m[1]!, key: m[2]! }));

/** A fresh registry filled by a first machine: everything it has (cached here or built now) goes there. */
async function filledCache(): Promise<{ repository: string; pushed: { step: string; key: string }[]; tags: string[] }> {
  const registry = await startRegistry();
  const repository = `${registry.address}/bronze/cache`;
  const first = await startBuild("minimal", undefined, ["--cache-to", repository, "--plain-http"]);
  assert.equal(first.exitCode, 0, first.all);
  const tags = (JSON.parse((await execa("skopeo", ["list-tags", "--tls-verify=false", `docker://${repository}`])).stdout) as { Tags: string[] }).Tags;
  return { repository, pushed: steps(first.all, "pushed to"), tags };
}

test("a second machine (a fresh cache) builds the minimal profile from the shared registry cache with zero steps run", { timeout: 30 * 60_000 }, async () => {
  const { repository, pushed, tags } = await filledCache();
  assert.deepEqual(pushed.map((p) => p.step).sort(), ["initramfs", "installer", "kernel minimal", "package e2fsprogs", "package init", "package musl", "rootfs", "uki"]);
  const digest = await installerDigest();

  // an independent client sees an OCI artifact tagged by the input hash
  const kernel = pushed.find((p) => p.step === "kernel minimal")!;
  const kernelTag = tags.find((t) => t.startsWith(kernel.key))!;
  assert.equal(tags.length, 8);
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
