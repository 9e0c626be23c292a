import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { before, test } from "node:test";
import { execa } from "execa";
import { signatureTag } from "../../src/oci/cosign.ts";
import { startBuild } from "../helpers/build.ts";
import { bronze } from "../helpers/cli.ts";
import { ecKeyPair, extensionImage } from "../helpers/extension.ts";
import { createSchematic, http, RELEASE, startFactory, whenBuilt, type Running } from "../helpers/factory.ts";
import { startRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/tmp.ts";

// A catalog in a registry: extension images and the index listing them, each signed by the publisher,
// read by a factory that trusts the publisher's key; two versions of one extension, pinned apart from
// the release; images outside the catalog taken only signed by a trusted key.
const dir = await tempDir();
const registry = (await startRegistry()).address;
const publisher = await ecKeyPair(dir, "publisher");
const forged = await ecKeyPair(dir, "forged");
// content no earlier run had: every build here makes its extension layer
const marker = randomBytes(6).toString("hex");
const motd = await Promise.all(["1.0.0", "2.0.0"].map((v) => extensionImage("motd", { "usr/share/motd/catalog.txt": `motd ${v} ${marker}\n` }, join(dir, v), v)));
const catalogRef = `${registry}/catalog:stable`;
let factory: Running;

interface BuiltRecord {
  extensions: { name: string; reference: string; digest: string; signature: string }[];
}

/** The extensions the built image's manifest.json records. */
async function builtExtensions(id: string): Promise<BuiltRecord["extensions"]> {
  const manifest = await whenBuilt(factory.address, `/image/${id}/${RELEASE}/manifest.json`);
  return (JSON.parse(manifest.body.toString()) as BuiltRecord).extensions;
}

before(async () => {
  const base = await startBuild("minimal");
  assert.equal(base.exitCode, 0, base.all);
  const published = await bronze(["factory", "catalog", "publish", catalogRef, ...motd.map((m) => m.tar), "--sign-key", publisher.key, "--plain-http"]);
  assert.equal(published.exitCode, 0, String(published.all));
  factory = await startFactory(registry, ["--catalog", catalogRef, "--trusted-keys", publisher.pub]);
});

test("the catalog is a signed OCI index of signed extension images that skopeo reads; the factory offers each version, the latest by name, any one pinned by digest", async () => {
  // an independent reader: the index, its entries' annotations, and cosign's signature tags beside each
  const index = JSON.parse((await execa("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${catalogRef}`])).stdout) as { manifests: { digest: string; annotations: Record<string, string> }[] };
  assert.deepEqual(
    index.manifests.map((m) => [m.digest, m.annotations["dev.bronze.extension.name"], m.annotations["dev.bronze.extension.version"]]),
    motd.map((m, i) => [m.digest, "motd", `${i + 1}.0.0`]),
  );
  for (const digest of [...motd.map((m) => m.digest), (await execa("skopeo", ["inspect", "--format", "{{.Digest}}", "--tls-verify=false", `docker://${catalogRef}`])).stdout.trim()]) {
    await execa("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${registry}/catalog:${signatureTag(digest)}`]);
  }
  const page = (await http(factory.address, "GET", `/ui?version=${RELEASE}&platform=minimal&arch=x86_64`)).body.toString();
  for (const m of motd) assert.ok(page.includes(`value="motd@${m.digest}"`), "each version is a choice of its own");

  const latest = await createSchematic(factory.address, "platform: minimal\nextensions: [motd]\noutputs: [uki]\n");
  const [built] = await builtExtensions(latest);
  assert.deepEqual([built?.digest, built?.reference, built?.signature], [motd[1]?.digest, `${registry}/catalog@${motd[1]?.digest ?? ""}`, "verified"]);
  const pinned = await createSchematic(factory.address, `platform: minimal\nextensions: ["motd@${motd[0]?.digest ?? ""}"]\noutputs: [uki]\n`);
  assert.equal((await builtExtensions(pinned))[0]?.digest, motd[0]?.digest);
  const unknown = await http(factory.address, "POST", "/schematics", `platform: minimal\nextensions: ["motd@sha256:${"0".repeat(64)}"]\n`);
  assert.equal(unknown.status, 400);
  assert.match(unknown.body.toString(), new RegExp(`the catalog has no 'motd' sha256:0{64}; it has ${motd[0]?.digest ?? ""}, ${motd[1]?.digest ?? ""}`));
});

test("an image outside the catalog is taken only signed by a trusted key: unsigned or signed by another key, it is refused with 400", async () => {
  const other = await extensionImage("plain", { "usr/share/plain/x.txt": `${marker}\n` }, join(dir, "plain"));
  await execa("skopeo", ["copy", "--all", "--dest-tls-verify=false", `oci:${other.layout}:1.0.0`, `docker://${registry}/others/plain:1.0.0`]);
  const item = `${registry}/others/plain@${other.digest}`;
  const schematic = `platform: minimal\nextensions: ["${item}"]\noutputs: [uki]\n`;
  const unsigned = await http(factory.address, "POST", "/schematics", schematic);
  assert.equal(unsigned.status, 400);
  assert.match(unsigned.body.toString(), new RegExp(`extension ${item} is not taken: it is not signed \\(no ${signatureTag(other.digest)}\\)`));
  // signed by a key the factory does not trust (bronze extension sign, the signature put where cosign puts it)
  assert.equal((await bronze(["extension", "sign", other.layout, "--key", forged.key])).exitCode, 0);
  await execa("skopeo", ["copy", "--all", "--dest-tls-verify=false", `oci:${other.layout}:${signatureTag(other.digest)}`, `docker://${registry}/others/plain:${signatureTag(other.digest)}`]);
  const foreign = await http(factory.address, "POST", "/schematics", schematic);
  assert.equal(foreign.status, 400);
  assert.match(foreign.body.toString(), /is not taken: no signature by a trusted key/);
  // signed by the publisher: taken, and the build verifies it again
  assert.equal((await bronze(["extension", "sign", other.layout, "--key", publisher.key])).exitCode, 0);
  await execa("skopeo", ["copy", "--all", "--dest-tls-verify=false", `oci:${other.layout}:${signatureTag(other.digest)}`, `docker://${registry}/others/plain:${signatureTag(other.digest)}`]);
  const id = await createSchematic(factory.address, schematic);
  assert.deepEqual((await builtExtensions(id)).map((e) => [e.reference, e.signature]), [[item, "verified"]]);
});

test("a factory refuses to start on a catalog not signed by a key it trusts, or without trusted keys, naming the catalog", async () => {
  const wrongKey = await bronze(["factory", "serve", "--listen", "127.0.0.1:0", "--registry", `${registry}/factory`, "--catalog", catalogRef, "--trusted-keys", forged.pub, "--plain-http"]);
  assert.equal(wrongKey.exitCode, 1, String(wrongKey.all));
  assert.match(String(wrongKey.all), new RegExp(`catalog ${registry}/catalog:stable \\(sha256:[0-9a-f]{64}\\) is not used: no signature by a trusted key`));
  const noKeys = await bronze(["factory", "serve", "--listen", "127.0.0.1:0", "--registry", `${registry}/factory`, "--catalog", catalogRef, "--plain-http"]);
  assert.equal(noKeys.exitCode, 2, String(noKeys.all));
  assert.match(String(noKeys.all), /is in a registry: give --trusted-keys with the public key it is signed by/);
});
