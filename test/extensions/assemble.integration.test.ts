import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { cp, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Spec, Validation } from "@cyclonedx/cyclonedx-library";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS } from "../../src/boot/qemu.ts";
import { signatureTag } from "../../src/oci/cosign.ts";
import { loadProfile } from "../../src/profile/profile.ts";
import { readUkiSections } from "../../src/uki/uki.ts";
import { startBuild } from "../helpers/build.ts";
import { bronze } from "../helpers/cli.ts";
import { ecKeyPair, extensionImage } from "../helpers/extension.ts";
import { launchRegistry } from "../helpers/registry-process.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

const OUT = (name: string) => join(PROJECT_ROOT, "_out", name);
const CUSTOM = ["hello", "ext-signed", "ext-unsigned", "ext-allowed", "ext-foreign", "ext-tampered", "ext-moved", "ext-policy", "ext-registry", "ext-registry-unsigned"];
after(() => Promise.all(CUSTOM.map((name) => rm(OUT(name), { recursive: true, force: true }))));

interface Manifest {
  extensions?: { name: string; built?: string; reference?: string; digest?: string; signature?: string; signedBy?: string; layer: { name: string } }[];
  layers?: { name: string }[];
}
const manifestOf = async (name: string) => JSON.parse(await readFile(join(OUT(name), "manifest.json"), "utf8")) as Manifest;

before(async () => {
  // every image here is the minimal one with extensions: its base first (from the cache when the other tests built it)
  const base = await startBuild("minimal");
  assert.equal(base.exitCode, 0, base.all);
});

test("the hello extension (a service and a kernel module built by the kernel job) layers over the minimal base and boots: the module loads by name with its dependency, init supervises the service", { timeout: 20 * 60_000 }, async () => {
  const built = await startBuild("hello");
  assert.equal(built.exitCode, 0, built.all);
  // the base's kernel, packages and rootfs are reused: only what the extension adds is made
  assert.doesNotMatch(built.all, /ran: .*\b(kernel|rootfs|package musl|package init)\b/);
  // the initramfs step is shown as cached exactly when neither its base nor its layers were made
  const ran = /build step\(s\) ran: (.*)/.exec(built.all)?.[1]?.split(", ") ?? [];
  const shown = /✔ \[[\d:]+\] initramfs( \(cached\))? /.exec(built.all);
  assert.ok(shown, built.all);
  assert.equal(shown[1] !== undefined, !ran.includes("initramfs") && !ran.includes("initramfs layers"), `ran: ${ran.join(", ")}; shown: ${shown[0]}`);
  const manifest = await manifestOf("hello");
  assert.deepEqual(manifest.extensions?.map((e) => [e.name, e.built, e.layer.name]), [["hello", "extensions/hello", "001-hello"]]);
  assert.deepEqual(manifest.layers?.map((l) => l.name), ["001-hello", "modules-index"]);
  // the tree's extension is also published as an OCI image, whose module verifies against this build's key
  const published = join(OUT("hello"), "extensions", "hello.oci.tar");
  const validated = await bronze(["extension", "validate", published, "--module-cert", join(OUT("hello"), "module-signing.der")]);
  assert.equal(validated.exitCode, 0, String(validated.all));
  assert.match(String((await bronze(["extension", "inspect", published])).stdout), /file +0644 \/usr\/lib\/modules\/[^/]+\/extra\/bronze_ext\.ko/);
  // the profile ID names the installer: annotated, and tagged <version>-<ID prefix> beside the version tag (skopeo reads both)
  const profile = await loadProfile(join(PROJECT_ROOT, "profiles", "hello.yaml"));
  const layout = join(OUT("hello"), "installer");
  const layoutIndex = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { digest: string; annotations: Record<string, string> }[] };
  const tags = layoutIndex.manifests.map((m) => m.annotations["org.opencontainers.image.ref.name"]);
  assert.equal(tags[1], `${tags[0]}-${profile.id.slice(0, 12)}`);
  const raw = async (tag: string | undefined) => (await execa("skopeo", ["inspect", "--raw", `oci:${layout}:${tag}`])).stdout;
  const rootIndex = JSON.parse(await raw(tags[1])) as { annotations: Record<string, string> };
  assert.equal(await raw(tags[0]), await raw(tags[1]));
  assert.equal(rootIndex.annotations["dev.bronze.profile.id"], profile.id);
  assert.equal(rootIndex.annotations["dev.bronze.profile.name"], "hello");
  // the base rootfs.sqsh is not re-packed, and the base initramfs is the first part of this one
  assert.ok((await readFile(join(OUT("hello"), "rootfs.sqsh"))).equals(await readFile(join(OUT("minimal"), "rootfs.sqsh"))));
  const initramfs = await readFile(join(OUT("hello"), "initramfs.cpio.zst"));
  const baseInitramfs = await readFile(join(OUT("minimal"), "initramfs.cpio.zst"));
  assert.ok(initramfs.subarray(0, baseInitramfs.length).equals(baseInitramfs), "the base initramfs comes first, unchanged");
  const initrd = readUkiSections(await readFile(join(OUT("hello"), "uki.efi"))).find((s) => s.name === ".initrd");
  assert.ok(initrd && Buffer.from(initrd.data).subarray(0, initramfs.length).equals(initramfs));

  // independent readers of what was appended: zstd and cpio unpack it, unsquashfs lists the extension's layer (with the service file init reads)
  const dir = await tempDir();
  const appended = join(dir, "layers.cpio.zst");
  await writeFile(appended, initramfs.subarray(baseInitramfs.length));
  const layer = join(dir, "layer");
  await mkdir(layer);
  await execa("sh", ["-c", `zstd -dc '${appended}' | (cd '${layer}' && cpio -id --quiet)`]);
  assert.deepEqual((await readdir(join(layer, "extensions"))).sort(), ["001-hello.sqsh", "modules-index.sqsh"]);
  const listing = (await execa("unsquashfs", ["-lc", "-d", "", join(layer, "extensions", "001-hello.sqsh")])).stdout;
  for (const path of ["/usr/local/bin/hello-service", "/usr/lib/bronze/services/hello.yaml", "/usr/lib/bronze/services/hello.service", "/usr/lib/modules-load.d/hello.conf"]) assert.ok(listing.includes(path), `${path} in\n${listing}`);
  assert.match(listing, /\/usr\/lib\/modules\/[^/]+\/extra\/bronze_ext\.ko/);
  const index = (await execa("unsquashfs", ["-cat", join(layer, "extensions", "modules-index.sqsh"), ...(await modulesDep(join(layer, "extensions", "modules-index.sqsh")))])).stdout;
  assert.match(index, /^extra\/bronze_ext\.ko: kernel\/lib\/crc-ccitt\.ko$/m);

  // what the extension adds has its own SBOM, beside the base's: every file of the layer, owned by the extension
  const spdx = JSON.parse(await readFile(join(OUT("hello"), "hello.extensions.spdx.json"), "utf8")) as {
    files: { SPDXID: string; fileName: string; checksums: { algorithm: string; checksumValue: string }[] }[];
    relationships: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[];
  };
  const service = spdx.files.find((f) => f.fileName === "./usr/local/bin/hello-service");
  const binary = (await execa("unsquashfs", ["-cat", join(layer, "extensions", "001-hello.sqsh"), "usr/local/bin/hello-service"], { encoding: "buffer" })).stdout;
  assert.equal(service?.checksums.find((c) => c.algorithm === "SHA256")?.checksumValue, createHash("sha256").update(binary).digest("hex"));
  assert.ok(spdx.relationships.some((r) => r.spdxElementId === "SPDXRef-Package-extension-hello" && r.relatedSpdxElement === service?.SPDXID));
  assert.ok(spdx.files.some((f) => /^\.\/usr\/lib\/modules\/[^/]+\/extra\/bronze_ext\.ko$/.test(f.fileName)));
  assert.equal(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(await readFile(join(OUT("hello"), "hello.extensions.cdx.json"), "utf8")), null);

  const result = await boot(
    { kind: "uki", uki: join(OUT("hello"), "uki.efi") },
    { ...BOOT_DEFAULTS, timeoutMs: 240_000, until: [/bronze: service hello running pid=\d+/, /hello-service: tick 2/] },
  );
  const lines = result.console.join("\n");
  assert.match(lines, /bronze: extension layer 001-hello mounted/);
  assert.match(lines, /bronze: root is an overlay of the base and 2 extension layer\(s\)/);
  // loaded by name from modules-load.d, its dependency first, both from the regenerated modules.dep
  assert.match(lines, /bronze: module crc-ccitt loaded from \/usr\/lib\/modules\/[^ ]+\/kernel\/lib\/crc-ccitt\.ko/);
  assert.match(lines, /bronze: module bronze_ext loaded from \/usr\/lib\/modules\/[^ ]+\/extra\/bronze_ext\.ko/);
  assert.match(lines, /bronze_ext: loaded, crc_ccitt\(bronze\)=0x[0-9a-f]{4}/);
  assert.match(lines, /bronze: service hello started pid=\d+/);
  assert.match(lines, /hello-service: started pid=\d+ interval=2s/);
  assert.equal(result.ready.root, "ro");
  assert.equal(result.ready.services, "1");
});

async function modulesDep(image: string): Promise<string[]> {
  const listing = (await execa("unsquashfs", ["-lc", "-d", "", image])).stdout;
  return listing.split("\n").filter((l) => l.endsWith("/modules.dep")).map((l) => l.slice(1));
}


/** `bronze extension build` of a directory with these files under rootfs/; returns the image tar and its digest. */


test("extension images are used only pinned, signed by a trusted key (or allowed unsigned by name) and within the content policy; each refusal names the extension and the reason", { timeout: 10 * 60_000 }, async () => {
  const dir = await tempDir();
  const trusted = await ecKeyPair(dir, "trusted");
  const foreign = await ecKeyPair(dir, "foreign");
  const profile = async (name: string, image: string, digest: string, extra = "") => {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, `name: ${name}\nbase: minimal\nextensions:\n  - image: ${image}\n    digest: ${digest}\ntrustedKeys: [trusted.pub]\n${extra}`);
    return startBuild(file);
  };

  // a service whose program is the base's (mke2fs, which fails without arguments): init restarts it as its policy says
  const flaky = "name: flaky\ncommand: /usr/sbin/mke2fs\nrestart: on-failure\n";
  const motd = await extensionImage("motd", { "usr/share/motd/hello.txt": "hello from an extension\n", "usr/lib/bronze/services/flaky.yaml": flaky }, dir);
  const signed = await bronze(["extension", "sign", motd.tar, "--key", trusted.key]);
  assert.equal(signed.exitCode, 0, String(signed.all));
  const good = await profile("ext-signed", motd.tar, motd.digest);
  assert.equal(good.exitCode, 0, good.all);
  const record = (await manifestOf("ext-signed")).extensions?.[0];
  assert.equal(record?.signature, "verified");
  assert.equal(record?.digest, motd.digest);
  assert.match(record?.signedBy ?? "", /^sha256:[0-9a-f]{64}$/);
  const supervised = await boot(
    { kind: "uki", uki: join(OUT("ext-signed"), "uki.efi") },
    { ...BOOT_DEFAULTS, timeoutMs: 240_000, until: [/bronze: service flaky restarting in 2 s/] },
  );
  const lines = supervised.console.join("\n");
  assert.match(lines, /bronze: service flaky started pid=\d+[\s\S]*bronze: service flaky exited status=1[\s\S]*bronze: service flaky restarting in 1 s/);
  assert.equal(supervised.ready.services, "1");

  // unsigned: refused, unless the profile allows it by name
  const plain = await extensionImage("plain", { "usr/share/plain/a.txt": "a\n" }, dir);
  const unsigned = await profile("ext-unsigned", plain.tar, plain.digest);
  assert.equal(unsigned.exitCode, 1, unsigned.all);
  assert.match(unsigned.all, /extension 'plain' \(sha256:[0-9a-f]+\) is not signed: .* has no sha256-[0-9a-f]+\.sig; sign it with 'bronze extension sign', or allow it unsigned by name in the profile/);
  const allowed = await profile("ext-allowed", plain.tar, plain.digest, "allowUnsigned: [plain]\n");
  assert.equal(allowed.exitCode, 0, allowed.all);
  assert.equal((await manifestOf("ext-allowed")).extensions?.[0]?.signature, "allowed unsigned");

  // signed by a key the profile does not trust
  const other = await extensionImage("other", { "usr/share/other/a.txt": "a\n" }, dir);
  assert.equal((await bronze(["extension", "sign", other.tar, "--key", foreign.key])).exitCode, 0);
  const wrongKey = await profile("ext-foreign", other.tar, other.digest);
  assert.equal(wrongKey.exitCode, 1, wrongKey.all);
  assert.match(wrongKey.all, /extension 'other' \(sha256:[0-9a-f]+\): signature check failed: a signature does not verify with any trusted key/);

  // tampered: a blob of the signed layout changed after signing
  const tampered = join(dir, "tampered");
  await cp(motd.layout, tampered, { recursive: true });
  assert.equal((await bronze(["extension", "sign", tampered, "--key", trusted.key])).exitCode, 0);
  const blobs = join(tampered, "blobs", "sha256");
  const sizes = await Promise.all((await readdir(blobs)).map(async (name) => ({ name, size: (await readFile(join(blobs, name))).length })));
  const layerBlob = sizes.sort((a, b) => b.size - a.size)[0]!.name;
  const bytes = await readFile(join(blobs, layerBlob));
  bytes[bytes.length - 600] = (bytes[bytes.length - 600] ?? 0) ^ 0xff;
  await writeFile(join(blobs, layerBlob), bytes);
  const broken = await profile("ext-tampered", tampered, motd.digest);
  assert.notEqual(broken.exitCode, 0, broken.all);
  assert.match(broken.all, new RegExp(`blob sha256:${layerBlob} does not match its digest or size: corrupted or tampered`));
  // replaced: a different image where the pinned one was
  const moved = await profile("ext-moved", plain.tar, motd.digest);
  assert.equal(moved.exitCode, 1, moved.all);
  assert.match(moved.all, new RegExp(`is ${plain.digest}, but the profile pins ${motd.digest}: it is not the image the profile names`));

  // policy-breaking: it replaces a file of the base image and ships an unsigned module (both pass 'extension build', which knows neither)
  const release = (await readFile(join(OUT("minimal"), "manifest.json"), "utf8")).match(/"release": "([^"]+)"/)?.[1] ?? "";
  const evil = await extensionImage("evil", { "usr/share/spdx/minimal.spdx.json": "{}", [`usr/lib/modules/${release}/extra/evil.ko`]: "\x7fELF not signed" }, dir);
  assert.equal((await bronze(["extension", "sign", evil.tar, "--key", trusted.key])).exitCode, 0);
  const policy = await profile("ext-policy", evil.tar, evil.digest);
  assert.equal(policy.exitCode, 2, policy.all);
  assert.match(policy.all, /extension 'evil': usr\/share\/spdx\/minimal\.spdx\.json: overwrite: replaces a file of the base image/);
  assert.match(policy.all, /extension 'evil': usr\/lib\/modules\/[^/]+\/extra\/evil\.ko: module-signature: kernel module is not signed/);
  for (const name of ["ext-unsigned", "ext-foreign", "ext-tampered", "ext-moved", "ext-policy"]) {
    await assert.rejects(readFile(join(OUT(name), "uki.efi")), `nothing published for ${name}`);
  }
});

test("an extension named by registry reference is pulled by digest with its cosign signature tag (pushed by skopeo), verified, and refused when the registry has no signature", { timeout: 10 * 60_000 }, async () => {
  const dir = await tempDir();
  const registry = await launchRegistry(join(dir, "registry"));
  try {
    const trusted = await ecKeyPair(dir, "trusted");
    // content no earlier run had: the image is pulled, not found in the cache
    const marker = randomBytes(8).toString("hex");
    const motd = await extensionImage("motd", { "usr/share/motd/registry.txt": `pulled from a registry ${marker}\n` }, dir);
    assert.equal((await bronze(["extension", "sign", motd.layout, "--key", trusted.key])).exitCode, 0);
    const repository = `${registry.address}/extensions/motd`;
    const tag = signatureTag(motd.digest);
    // an independent client puts the image and its signature where cosign would: the tag sha256-<hex>.sig beside it
    await execa("skopeo", ["copy", "--all", "--dest-tls-verify=false", `oci:${motd.layout}:1.0.0`, `docker://${repository}:1.0.0`]);
    await execa("skopeo", ["copy", "--all", "--dest-tls-verify=false", `oci:${motd.layout}:${tag}`, `docker://${repository}:${tag}`]);
    const profile = async (name: string, reference: string) => {
      const file = join(dir, `${name}.yaml`);
      await writeFile(file, `name: ${name}\nbase: minimal\nextensions:\n  - image: ${reference}\ntrustedKeys: [trusted.pub]\n`);
      return startBuild(file, undefined, ["--plain-http"]);
    };
    const reference = `${repository}@${motd.digest}`;
    const pulled = await profile("ext-registry", reference);
    assert.equal(pulled.exitCode, 0, pulled.all);
    const record = (await manifestOf("ext-registry")).extensions?.[0];
    assert.deepEqual([record?.reference, record?.digest, record?.signature], [reference, motd.digest, "verified"]);

    const plain = await extensionImage("plain", { "usr/share/plain/b.txt": `${marker}\n` }, dir);
    await execa("skopeo", ["copy", "--all", "--dest-tls-verify=false", `oci:${plain.layout}:1.0.0`, `docker://${registry.address}/extensions/plain:1.0.0`]);
    const unsigned = await profile("ext-registry-unsigned", `${registry.address}/extensions/plain@${plain.digest}`);
    assert.equal(unsigned.exitCode, 1, unsigned.all);
    assert.match(unsigned.all, /extension 'plain' \(sha256:[0-9a-f]+\) is not signed/);
  } finally {
    registry.stop();
  }
});
