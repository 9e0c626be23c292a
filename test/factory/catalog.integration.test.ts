import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import { execa } from "execa";
import { extensionContent, extensionImage } from "../../src/extensions/image.ts";
import { readTree } from "../../src/oci/dir-read.ts";
import { signatureTag } from "../../src/oci/cosign.ts";
import { startBuild } from "../helpers/build.ts";
import { bronze } from "../helpers/cli.ts";
import { ecKeyPair, extensionImage as builtExtension, extensionManifest } from "../helpers/extension.ts";
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
const factoryKey = await ecKeyPair(dir, "factory");
// content no earlier run had: every build here makes its extension layer
const marker = randomBytes(6).toString("hex");
const motd = await Promise.all(["1.0.0", "2.0.0"].map((v) => builtExtension("motd", { "usr/share/motd/catalog.txt": `motd ${v} ${marker}\n` }, join(dir, v), v)));
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
  factory = await startFactory(registry, factoryKey.key, ["--catalog", catalogRef, "--trusted-keys", publisher.pub]);
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
  const other = await builtExtension("plain", { "usr/share/plain/x.txt": `${marker}\n` }, join(dir, "plain"));
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

/** A Talos-built extension image (compatibility: talos), as its own tooling would make one: bronze's build refuses such sources. */
async function talosImage(name: string, files: Record<string, string>): Promise<string> {
  const src = join(dir, `${name}-talos`);
  await mkdir(src, { recursive: true });
  await writeFile(join(src, "manifest.yaml"), extensionManifest(name).replace(/bronze:\n\s+version: .*/, 'talos:\n      version: ">= v1.7.0"'));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(src, "rootfs", path, ".."), { recursive: true });
    await writeFile(join(src, "rootfs", path), text);
  }
  const entries = await readTree(src);
  const content = extensionContent(src, entries, { talos: true });
  const tar = join(dir, `${name}-talos.oci.tar`);
  await writeFile(tar, extensionImage(content, entries, { epoch: 1_700_000_000 }).tar);
  return tar;
}

test("a Talos-built extension without kernel modules enters a catalog only named by its publisher (--admit-talos), and is built with its lib/ under usr/lib/; one with a module is refused", async () => {
  const ucode = await talosImage("ucode", { "lib/firmware/vendor/ucode.bin": `microcode ${marker}\n` });
  const talosRef = `${registry}/catalog:talos`;
  const notNamed = await bronze(["factory", "catalog", "publish", talosRef, ucode, "--sign-key", publisher.key, "--plain-http"]);
  assert.equal(notNamed.exitCode, 2, String(notNamed.all));
  assert.match(String(notNamed.all), /extension 'ucode' is built for Talos \(>= v1\.7\.0\); name it in --admit-talos to offer it \(only without kernel modules\)/);
  const driver = await talosImage("driver", { "lib/modules/6.6.0-talos/extra/drv.ko": "\x7fELF" });
  const withModule = await bronze(["factory", "catalog", "publish", talosRef, driver, "--sign-key", publisher.key, "--admit-talos", "driver", "--plain-http"]);
  assert.equal(withModule.exitCode, 2, String(withModule.all));
  assert.match(String(withModule.all), /usr\/lib\/modules\/6\.6\.0-talos\/extra\/drv\.ko: compatibility: a Talos-built extension is admitted without kernel modules only/);
  const published = await bronze(["factory", "catalog", "publish", talosRef, ucode, "--sign-key", publisher.key, "--admit-talos", "ucode", "--plain-http"]);
  assert.equal(published.exitCode, 0, String(published.all));

  const talosFactory = await startFactory(registry, factoryKey.key, ["--catalog", talosRef, "--trusted-keys", publisher.pub]);
  const id = await createSchematic(talosFactory.address, "platform: minimal\nextensions: [ucode]\noutputs: [uki]\n");
  const manifest = await whenBuilt(talosFactory.address, `/image/${id}/${RELEASE}/manifest.json`);
  assert.deepEqual((JSON.parse(manifest.body.toString()) as BuiltRecord).extensions.map((e) => [e.name, e.signature]), [["ucode", "verified"]]);
  const sbom = JSON.parse((await http(talosFactory.address, "GET", `/image/${id}/${RELEASE}/factory-${id.slice(0, 12)}.extensions.spdx.json`)).body.toString()) as { files: { fileName: string }[] };
  assert.ok(sbom.files.some((f) => f.fileName === "./usr/lib/firmware/vendor/ucode.bin"), JSON.stringify(sbom.files.map((f) => f.fileName)));
});

test("a factory refuses to start on a catalog not signed by a key it trusts, or without trusted keys, naming the catalog", async () => {
  const wrongKey = await bronze(["factory", "serve", "--listen", "127.0.0.1:0", "--registry", `${registry}/factory`, "--sign-key", factoryKey.key, "--catalog", catalogRef, "--trusted-keys", forged.pub, "--plain-http"]);
  assert.equal(wrongKey.exitCode, 1, String(wrongKey.all));
  assert.match(String(wrongKey.all), new RegExp(`catalog ${registry}/catalog:stable \\(sha256:[0-9a-f]{64}\\) is not used: no signature by a trusted key`));
  const noKeys = await bronze(["factory", "serve", "--listen", "127.0.0.1:0", "--registry", `${registry}/factory`, "--sign-key", factoryKey.key, "--catalog", catalogRef, "--plain-http"]);
  assert.equal(noKeys.exitCode, 2, String(noKeys.all));
  assert.match(String(noKeys.all), /is in a registry: give --trusted-keys with the public key it is signed by/);
});
