import assert from "node:assert/strict";
import { chmod, mkdir, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { InputError } from "../../src/core/errors.ts";
import { buildExtensionImage, extensionContent, loadExtension } from "../../src/extensions/image.ts";
import { parseExtensionManifest } from "../../src/extensions/manifest.ts";
import { checkExtension, type ExtensionContent, type PolicyRule } from "../../src/extensions/policy.ts";
import { signerCertificate } from "../../src/kernel/module-sig.ts";
import { writeLayoutDir } from "../../src/oci/layout.ts";
import type { ReadEntry } from "../../src/oci/tar-read.ts";
import { bronze } from "../helpers/cli.ts";
import { makeSigningKey, signModule } from "../helpers/modsign.ts";
import { extensionManifest } from "../helpers/extension.ts";
import { tempDir } from "../helpers/tmp.ts";

const MANIFEST = extensionManifest();

async function sourceDir(): Promise<string> {
  const dir = await tempDir();
  await writeFile(join(dir, "manifest.yaml"), MANIFEST);
  await mkdir(join(dir, "rootfs/usr/local/bin"), { recursive: true });
  await writeFile(join(dir, "rootfs/usr/local/bin/hello"), "#!/bin/sh\necho hello\n");
  await chmod(join(dir, "rootfs/usr/local/bin/hello"), 0o755);
  await symlink("hello", join(dir, "rootfs/usr/local/bin/hi"));
  return dir;
}

test("an extension directory becomes a reproducible OCI image that reads back with its manifest and entries", async () => {
  const dir = await sourceDir();
  const one = await buildExtensionImage(dir, { epoch: 1_700_000_000, osVersion: "0.1.0" });
  const two = await buildExtensionImage(dir, { epoch: 1_700_000_000, osVersion: "0.1.0" });
  assert.equal(one.index.descriptor.digest, two.index.descriptor.digest, "same inputs, same digest");
  assert.deepEqual(one.tar, two.tar);
  const out = await tempDir();
  await writeLayoutDir(join(out, "hello"), one.files);
  await writeFile(join(out, "hello.oci.tar"), one.tar);
  for (const source of [join(out, "hello"), join(out, "hello.oci.tar")]) {
    const ext = await loadExtension(source);
    assert.equal(ext.manifest.name, "hello");
    assert.deepEqual(
      ext.entries.map((e) => [e.path, e.type]),
      [["usr", "dir"], ["usr/local", "dir"], ["usr/local/bin", "dir"], ["usr/local/bin/hello", "file"], ["usr/local/bin/hi", "symlink"]],
    );
    assert.deepEqual(checkExtension(ext, { osVersion: "0.1.0" }), []);
  }
  // skopeo reads it as any OCI image
  const inspected = JSON.parse((await execa("skopeo", ["inspect", `oci:${join(out, "hello")}:1.0.0`])).stdout) as { Labels: Record<string, string> };
  assert.equal(inspected.Labels["org.opencontainers.image.title"], "hello");

  // a tampered blob is refused when read
  const blobs = join(out, "hello", "blobs", "sha256");
  for (const name of await readdir(blobs)) {
    const data = await readFile(join(blobs, name));
    if (data[0] !== 0x1f) continue; // the gzip layer
    data[data.length - 10] = (data[data.length - 10] ?? 0) ^ 0xff;
    await writeFile(join(blobs, name), data);
  }
  await assert.rejects(loadExtension(join(out, "hello")), /does not match its digest or size: corrupted or tampered/);
});

const file = (path: string, mode = 0o644, data: Buffer<ArrayBufferLike> = Buffer.from("x")): ReadEntry => ({ path, type: "file", mode, uid: 0, gid: 0, data });
const content = (entries: ReadEntry[], stray: string[] = [], compatibility = ">= 0.1.0"): ExtensionContent => ({
  manifest: { name: "bad", version: "1", author: "t", description: "", compatibility },
  entries,
  stray,
});
const rules = (ext: ExtensionContent, context = { osVersion: "0.1.0" }): [string, PolicyRule][] => checkExtension(ext, context).map((v) => [v.path, v.rule]);

test("the content policy refuses each kind of breach, naming the path and the rule", async () => {
  assert.deepEqual(rules(content([file("etc/passwd")])), [["etc/passwd", "allowed-paths"]]);
  assert.deepEqual(rules(content([{ path: "var", type: "dir", mode: 0o755, uid: 0, gid: 0 }, { path: "etc", type: "dir", mode: 0o755, uid: 0, gid: 0 }])), [["var", "allowed-paths"]], "etc leads to etc/cri/conf.d");
  assert.deepEqual(rules(content([file("usr/local/../../etc/x"), file("/usr/local/abs")])), [["usr/local/../../etc/x", "path-traversal"], ["/usr/local/abs", "path-traversal"]]);
  assert.deepEqual(
    rules(content(["char", "block", "fifo", "other"].map((type, i) => ({ path: `usr/local/dev${i}`, type: type as ReadEntry["type"], mode: 0o600, uid: 0, gid: 0 })))),
    [0, 1, 2, 3].map((i) => [`usr/local/dev${i}`, "special-file"]),
  );
  assert.deepEqual(rules(content([{ path: "usr/local/l", type: "hardlink", mode: 0o644, uid: 0, gid: 0, target: "usr/local/a" }])), [["usr/local/l", "hardlink"]]);
  assert.deepEqual(rules(content([file("usr/local/bin/su", 0o4755), file("usr/local/bin/sg", 0o2755)])), [["usr/local/bin/su", "setuid-setgid"], ["usr/local/bin/sg", "setuid-setgid"]]);
  assert.deepEqual(rules(content([file("usr/share/w", 0o666)])), [["usr/share/w", "world-writable"]]);
  const link = (path: string, target: string): ReadEntry => ({ path, type: "symlink", mode: 0o777, uid: 0, gid: 0, target });
  assert.deepEqual(
    rules(content([link("usr/local/a", "../../../../etc/shadow"), link("usr/local/b", "/etc/shadow"), link("usr/local/c", "../lib/libc.so"), link("usr/local/d", "/usr/lib/x")])),
    [["usr/local/a", "symlink-escape"], ["usr/local/b", "symlink-escape"]],
  );
  assert.deepEqual(
    checkExtension(content([file("usr/share/base"), file("usr/local/mine")]), { osVersion: "0.1.0", baseFiles: new Set(["usr/share/base"]), claimed: new Map([["usr/local/mine", "other"]]) }).map((v) => v.detail),
    ["replaces a file of the base image", "replaces a file of extension 'other'"],
  );
  assert.deepEqual(rules(content([], [], ">= 9.0.0")), [["manifest.yaml", "compatibility"]]);
  assert.deepEqual(rules(content([], ["etc/stray"])), [["etc/stray", "layout"]]);

  const dir = await tempDir();
  const ours = await makeSigningKey(dir, "ours");
  const foreign = await makeSigningKey(dir, "foreign");
  const module = Buffer.from("\x7fELF pretend module");
  const cert = signerCertificate(await readFile(ours.der));
  const ko = (name: string, data: Buffer<ArrayBufferLike>) => file(`usr/lib/modules/6.1.0/extra/${name}.ko`, 0o644, data);
  const signed = await signModule(module, ours, dir);
  assert.deepEqual(
    checkExtension(content([ko("good", signed), ko("unsigned", module), ko("foreign", await signModule(module, foreign, dir))]), { osVersion: "0.1.0", moduleCert: cert }).map((v) => [v.path, v.rule, v.detail]),
    [
      ["usr/lib/modules/6.1.0/extra/unsigned.ko", "module-signature", "kernel module is not signed"],
      ["usr/lib/modules/6.1.0/extra/foreign.ko", "module-signature", "kernel module does not verify against this build's key (foreign)"],
    ],
  );
});

test("manifest.yaml errors name the file and line and say what to write", () => {
  const cases: [string, RegExp][] = [
    [MANIFEST.replace("v1alpha1", "v2"), /m\.yaml:1: version must be v1alpha1/],
    [MANIFEST.replace("bronze:", "talos:"), /m\.yaml:9: compatibility names talos; for bronze write/],
    [MANIFEST.replace('">= 0.1.0, < 1.0.0"', '"about 1"'), /m\.yaml:9: 'about 1' is not a version constraint/],
    [MANIFEST.replace("author: bronze tests", "owner: me"), /m\.yaml:5: unknown key 'owner'/],
    [MANIFEST.replace("name: hello", "name: Hello World"), /m\.yaml:3: 'metadata.name' 'Hello World' is not valid/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseExtensionManifest("m.yaml", text), (e: unknown) => e instanceof InputError && message.test(e.message));
  }
});

test("a Talos-built extension is read only when asked for: marked with its Talos constraint, its lib/ placed under usr/lib/, admitted without kernel modules only", () => {
  const talos = MANIFEST.replace('bronze:\n      version: ">= 0.1.0, < 1.0.0"', 'talos:\n      version: ">= v1.5.0"');
  assert.throws(() => parseExtensionManifest("m.yaml", talos), /compatibility names talos; .* admitted by name: a profile's talosExtensions/);
  const manifest = parseExtensionManifest("m.yaml", talos, { talos: true });
  assert.deepEqual([manifest.talos, manifest.compatibility], [">= v1.5.0", ""]);
  const file = (path: string): ReadEntry => ({ path, type: "file", mode: 0o644, uid: 0, gid: 0, data: Buffer.from("x") });
  const layer = [{ ...file("manifest.yaml"), data: Buffer.from(talos) }, { ...file("rootfs/lib"), type: "dir" as const, mode: 0o755 }, file("rootfs/lib/firmware/vendor/ucode.bin"), file("rootfs/usr/local/bin/tool")];
  const content = extensionContent("talos-image", layer, { talos: true });
  assert.deepEqual(content.entries.map((e) => e.path), ["usr/lib", "usr/lib/firmware/vendor/ucode.bin", "usr/local/bin/tool"]);
  // no bronze version to satisfy: the firmware and the static binary pass, a kernel module does not
  assert.deepEqual(checkExtension(content, { osVersion: "0.1.0" }), []);
  const withModule = extensionContent("talos-image", [...layer, file("rootfs/lib/modules/6.6.0-talos/extra/x.ko")], { talos: true });
  assert.deepEqual(
    checkExtension(withModule, { osVersion: "0.1.0" }).map((v) => [v.path, v.rule]),
    [["usr/lib/modules/6.6.0-talos/extra/x.ko", "compatibility"]],
  );
  // a bronze extension's lib/ is not moved: it is refused where it is
  assert.ok(checkExtension(extensionContent("bronze-image", [{ ...file("manifest.yaml"), data: Buffer.from(MANIFEST) }, file("rootfs/lib/x")]), { osVersion: "0.1.0" }).some((v) => v.path === "lib/x" && v.rule === "allowed-paths"));
});

test("bronze extension build refuses a directory that breaks the policy (exit 2, every violation named); validate and inspect read what build wrote", async () => {
  const bad = await sourceDir();
  await execa("mkfifo", [join(bad, "rootfs/usr/local/bin/pipe")]);
  await chmod(join(bad, "rootfs/usr/local/bin/hello"), 0o4755);
  await mkdir(join(bad, "rootfs/etc"));
  await writeFile(join(bad, "rootfs/etc/motd"), "hi\n");
  const refused = await bronze(["extension", "build", bad, "--out", await tempDir()]);
  assert.equal(refused.exitCode, 2, String(refused.all));
  assert.match(String(refused.stderr), /extension 'hello': usr\/local\/bin\/pipe: special-file: a FIFO/);
  assert.match(String(refused.stderr), /extension 'hello': usr\/local\/bin\/hello: setuid-setgid: mode 4755/);
  assert.match(String(refused.stderr), /extension 'hello': etc\/motd: allowed-paths/);

  const out = await tempDir();
  const built = await bronze(["extension", "build", await sourceDir(), "--out", out]);
  assert.equal(built.exitCode, 0, String(built.all));
  const validated = await bronze(["extension", "validate", join(out, "hello.oci.tar")]);
  assert.equal(validated.exitCode, 0, String(validated.all));
  assert.match(String(validated.stdout), /extension 'hello' 1\.0\.0: 5 entries, policy ok/);
  const incompatible = await bronze(["extension", "validate", join(out, "hello"), "--os-version", "2.0.0"]);
  assert.equal(incompatible.exitCode, 1);
  assert.match(String(incompatible.stderr), /extension 'hello': manifest\.yaml: compatibility: needs bronze >= 0\.1\.0, < 1\.0\.0; this image is 2\.0\.0/);
  const inspected = await bronze(["extension", "inspect", join(out, "hello")]);
  assert.match(String(inspected.stdout), /symlink 0777 \/usr\/local\/bin\/hi -> hello/);
});
