import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS } from "../../src/boot/qemu.ts";
import { startBuild } from "../helpers/build.ts";
import { bronze } from "../helpers/cli.ts";
import { ecKeyPair } from "../helpers/extension.ts";
import { startFaultProxy } from "../helpers/fault-proxy.ts";
import { buildsOf, createSchematic, http, RELEASE, sha256, startFactory, whenBuilt, type Running } from "../helpers/factory.ts";
import { formFields } from "../helpers/html-form.ts";
import { startRegistry } from "../helpers/registry.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// The factory against Debian's docker-registry, through its HTTP front and its registry front, with
// real clients (curl's part played by node:http, skopeo, openssl, bronze upgrade) and a real boot.
// Its release (RELEASE) is newer than the minimal image's, so that its installers upgrade a disk of it.
const dir = await tempDir();
const HELLO = "platform: minimal\nextensions: [hello]\noutputs: [uki, installer, iso]\n";

// started here, not in a hook: what a hook registers to stop would stop when the hook ends
const registry = (await startRegistry()).address;
const keys = await ecKeyPair(dir, "factory");
let first: Running;

before(async () => {
  // the release every schematic here starts from: the minimal image, from the cache when other tests built it
  const base = await startBuild("minimal");
  assert.equal(base.exitCode, 0, base.all);
  first = await startFactory(registry, keys.key);
});

test("a schematic with the hello extension: its ID is its content's, its UKI and ISO are built on the first request (answered at once), signed, and a second factory on the registry serves them without building", async () => {
  const id = await createSchematic(first.address, HELLO);
  // the same schematic written otherwise is the same schematic; what is stored hashes to its ID
  assert.equal(await createSchematic(first.address, "# hello on minimal\noutputs: [iso, uki, installer]\nextensions:\n  - hello\nplatform: minimal\narch: x86_64\n"), id);
  const stored = await http(first.address, "GET", `/schematics/${id}`);
  assert.equal(sha256(stored.body), id);

  // answered while the build goes on: a 202 is what the factory says when the image is not there yet
  const asked = await http(first.address, "GET", `/image/${id}/${RELEASE}/uki.efi`);
  assert.equal(asked.status, 202, asked.body.toString());
  const uki = (await whenBuilt(first.address, `/image/${id}/${RELEASE}/uki.efi`)).body;
  assert.equal((await http(first.address, "GET", `/image/${id}/${RELEASE}/uki.efi.sha256`)).body.toString(), `${sha256(uki)}  uki.efi\n`);
  const head = await http(first.address, "HEAD", `/image/${id}/${RELEASE}/image.iso`);
  assert.equal(head.status, 200);
  const iso = (await http(first.address, "GET", `/image/${id}/${RELEASE}/image.iso`)).body;
  assert.equal(Number(head.headers["content-length"]), iso.length);
  // each file's signature checks with openssl against the factory's public key
  for (const [name, data] of [["uki.efi", uki], ["image.iso", iso]] as const) {
    await writeFile(join(dir, name), data);
    await writeFile(join(dir, `${name}.sig`), (await http(first.address, "GET", `/image/${id}/${RELEASE}/${name}.sig`)).body);
    const verified = await execa("openssl", ["dgst", "-sha256", "-verify", keys.pub, "-signature", join(dir, `${name}.sig`), join(dir, name)], { reject: false });
    assert.equal(verified.exitCode, 0, `${name}: ${verified.stdout}${verified.stderr}`);
  }
  const report = (await execa("xorriso", ["-indev", join(dir, "image.iso"), "-report_el_torito", "plain"], { all: true })).all;
  assert.match(report, /El Torito boot img :\s+1\s+UEFI/);
  assert.equal(buildsOf(first.log(), id), 1);

  // a second factory on the same registry holds nothing of its own: it serves what the first built, also
  // when the registry is slow (every answer 1.5 s late, longer than a factory waits for a build to end)
  const slow = await startFaultProxy(registry, 1, 1, ["slow"]);
  try {
    const second = await startFactory(slow.address, keys.key);
    const again = await http(second.address, "GET", `/image/${id}/${RELEASE}/uki.efi`);
    assert.equal(again.status, 200, again.body.toString());
    assert.ok(again.body.equals(uki));
    assert.equal(buildsOf(second.log(), id), 0, second.log());
    assert.ok(slow.faults.slow > 0, "the registry was slow");
  } finally {
    slow.stop();
  }
});

test("the wizard, walked as a browser without JavaScript walks it (each step a GET of the previous step's form), ends on links that serve the image", async () => {
  let url = "/";
  const choose: Record<string, [string, string][]> = {
    platform: [["platform", "minimal"]],
    ext: [["ext", "hello"]],
    args: [["args", 'bronze.wizard="a b"']],
  };
  let html = "";
  for (let step = 0; step < 5; step++) {
    const answer = await http(first.address, "GET", url);
    assert.equal(answer.status, 200, `${url}: ${answer.body.toString()}`);
    assert.equal(answer.headers["content-security-policy"], "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
    html = answer.body.toString();
    if (!html.includes('<form method="get" action="/ui">')) break;
    let fields = formFields(html);
    for (const [field, values] of Object.entries(choose)) {
      if (html.includes(`name="${field}"`)) fields = [...fields.filter(([n]) => n !== field), ...values];
    }
    url = `/ui?${new URLSearchParams(fields).toString()}`;
  }
  assert.match(html, /<h1>Your image: bronze 0\.1\.1 for minimal \(x86_64\)<\/h1>/);
  const id = /Schematic <code>([0-9a-f]{64})<\/code> is stored/.exec(html)?.[1] ?? "";
  const stored = JSON.parse((await http(first.address, "GET", `/schematics/${id}`)).body.toString()) as { extensions: string[]; kernelArgs: string[] };
  assert.deepEqual([stored.extensions, stored.kernelArgs], [["hello"], ['bronze.wizard="a b"']]);
  const uki = [...html.matchAll(/href="([^"]*\/uki\.efi)"/g)].map((m) => m[1])[0] ?? "";
  assert.equal(uki, `/image/${id}/${RELEASE}/uki.efi`);
  await whenBuilt(first.address, uki);
  const bad = await http(first.address, "GET", `/ui?version=${RELEASE}&platform=minimal&arch=x86_64&extensions=chosen&ext=%3Cscript%3E&args=`);
  assert.equal(bad.status, 400);
  assert.equal(bad.headers["x-content-type-options"], "nosniff");
  assert.match(bad.body.toString(), /extension '<script>' is not in the catalog/);
  assert.match(String(bad.headers["content-type"]), /^text\/plain/);
});

test("20 requests at once for an image not built yet run one build, and all get the same bytes", async () => {
  const id = await createSchematic(first.address, "platform: minimal\nextensions: [hello]\nkernelArgs: [bronze.factory-test=20]\noutputs: [uki]\n");
  const answers = await Promise.all(Array.from({ length: 20 }, () => http(first.address, "GET", `/image/${id}/${RELEASE}/uki.efi`)));
  for (const answer of answers) {
    assert.ok(answer.status === 202 || answer.status === 200, answer.body.toString());
  }
  const built = await Promise.all(Array.from({ length: 20 }, () => whenBuilt(first.address, `/image/${id}/${RELEASE}/uki.efi`)));
  assert.equal(new Set(built.map((a) => sha256(a.body))).size, 1);
  assert.equal(buildsOf(first.log(), id), 1, first.log());
});

test("two factories on one registry asked at once for an image neither has: one builds it, the other waits for it and serves the same bytes", async () => {
  const other = await startFactory(registry, keys.key);
  const id = await createSchematic(first.address, "platform: minimal\nextensions: [hello]\nkernelArgs: [bronze.factory-test=two]\noutputs: [uki]\n");
  const path = `/image/${id}/${RELEASE}/uki.efi`;
  const answers = await Promise.all([first, other].flatMap((f) => Array.from({ length: 10 }, () => whenBuilt(f.address, path))));
  assert.equal(new Set(answers.map((a) => sha256(a.body))).size, 1);
  assert.equal(buildsOf(first.log(), id) + buildsOf(other.log(), id), 1, `${first.log()}\n${other.log()}`);
  assert.match(`${first.log()}${other.log()}`, new RegExp(`${id} is being built by another factory on the registry: waiting for it`));
});

test("an iPXE script per schematic, version and arch boots the image's kernel and initramfs from the factory; before they are built it waits and asks again", async () => {
  const id = await createSchematic(first.address, "platform: minimal\nextensions: [hello]\nkernelArgs: [bronze.factory-test=pxe]\n");
  const early = await http(first.address, "GET", `/pxe/${id}/${RELEASE}/amd64`);
  assert.equal(early.status, 200);
  assert.match(early.body.toString(), new RegExp(`^#!ipxe\necho bronze factory: .* is being built.*\nsleep 5\nchain /pxe/${id}/${RELEASE}/amd64\n$`));
  let script = "";
  for (let tries = 0; tries < 600 && !script.includes("\nboot\n"); tries++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    script = (await http(first.address, "GET", `/pxe/${id}/${RELEASE}/x86_64`)).body.toString();
  }
  const base = `/image/${id}/${RELEASE}/`;
  const lines = script.split("\n");
  assert.equal(lines[0], "#!ipxe");
  const kernel = lines.find((l) => l.startsWith("kernel "))?.split(" ") ?? [];
  assert.deepEqual(kernel.slice(0, 3), ["kernel", `${base}vmlinuz`, "initrd=initramfs.cpio.zst"]);
  const minimal = JSON.parse(await readFile(join(PROJECT_ROOT, "_out", "minimal", "manifest.json"), "utf8")) as { cmdline: string };
  assert.equal(kernel.slice(3).join(" "), `${minimal.cmdline} bronze.factory-test=pxe`);
  assert.ok(lines.includes(`initrd ${base}initramfs.cpio.zst`), script);
  for (const file of ["vmlinuz", "initramfs.cpio.zst"]) {
    const served = await http(first.address, "GET", `${base}${file}`);
    assert.equal(served.status, 200);
    assert.equal(`${sha256(served.body)}  ${file}\n`, (await http(first.address, "GET", `${base}${file}.sha256`)).body.toString());
  }
  const wrongArch = await http(first.address, "GET", `/pxe/${id}/${RELEASE}/arm64`);
  assert.equal(wrongArch.status, 404);
  assert.match(wrongArch.body.toString(), /is for x86_64 \(amd64\), not 'arm64'/);
  const noKernel = await createSchematic(first.address, HELLO);
  await whenBuilt(first.address, `/image/${noKernel}/${RELEASE}/uki.efi`);
  const refused = await http(first.address, "GET", `/pxe/${noKernel}/${RELEASE}/amd64`);
  assert.equal(refused.status, 404);
  assert.match(refused.body.toString(), /has no vmlinuz, initramfs\.cpio\.zst: network boot needs the kernel-initramfs output/);
});

test("the factory's registry front serves the installer: bronze upgrade --image waits while it is built on first pull and installs it on a disk that then boots the extension; skopeo copies it, and its signature verifies", { timeout: 10 * 60_000 }, async () => {
  const id = await createSchematic(first.address, `${HELLO}kernelArgs: [bronze.factory-test=upgrade]\n`);
  const reference = `${first.address}/installer/${id}:${RELEASE}`;
  const disk = join(dir, "disk.raw");
  const made = await bronze(["image", "disk", "--from", join(PROJECT_ROOT, "_out", "minimal", "installer"), "--out", disk, "--size", "256M"]);
  assert.equal(made.exitCode, 0, String(made.all));
  // nothing built yet: the first pull is answered 503 with the factory's header, which bronze waits on
  const upgraded = await bronze(["upgrade", "--disk", disk, "--image", reference, "--key", keys.pub, "--plain-http"]);
  assert.equal(upgraded.exitCode, 0, String(upgraded.all));
  assert.match(String(upgraded.all), /being built by the factory; asking again in 5000 ms/);
  assert.match(String(upgraded.all), new RegExp(`${RELEASE} installed as EFI/Linux/bronze-${RELEASE}\\+3\\.efi`));
  assert.equal(buildsOf(first.log(), id), 1);

  const raw = JSON.parse((await execa("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${reference}`])).stdout) as { manifests: { platform: { architecture: string } }[] };
  assert.deepEqual(raw.manifests.map((m) => m.platform.architecture), ["amd64"]);
  await execa("skopeo", ["copy", "--quiet", "--all", "--src-tls-verify=false", `docker://${reference}`, `oci:${join(dir, "copied")}:${RELEASE}`]);
  const verified = await bronze(["verify", reference, "--key", keys.pub, "--attestations", "--plain-http"]);
  assert.equal(verified.exitCode, 0, String(verified.all));
  const forged = await ecKeyPair(dir, "forged");
  const refused = await bronze(["verify", reference, "--key", forged.pub, "--plain-http"]);
  assert.equal(refused.exitCode, 1, String(refused.all));

  // what the disk now boots is the UKI the factory serves for the schematic
  const installed = (await execa("mtype", ["-i", `${disk}@@${1 << 20}`, `::/EFI/Linux/bronze-${RELEASE}+3.efi`], { encoding: "buffer" })).stdout;
  assert.ok(Buffer.from(installed).equals((await http(first.address, "GET", `/image/${id}/${RELEASE}/uki.efi`)).body));
  const booted = await boot({ kind: "disk", disk }, { ...BOOT_DEFAULTS, until: [/bronze: service hello running pid=\d+/, /hello-service: tick 2/] });
  assert.equal(booted.ready.version, RELEASE);
  assert.equal(booted.ready.services, "1");
  assert.ok(booted.console.some((l) => /bronze: extension layer 001-hello mounted/.test(l)));
  assert.ok(booted.console.some((l) => /Kernel command line: .*bronze\.factory-test=upgrade/.test(l)), "it boots with the schematic's kernel arguments");
});

test("a schematic with secureBoot: true from a factory holding a db key: the UKI it serves is signed (sbverify accepts it with the db certificate), and the wizard offers the choice", async () => {
  const keysDir = join(dir, "secureboot");
  const generated = await bronze(["keys", "generate", keysDir]);
  assert.equal(generated.exitCode, 0, String(generated.all));
  const signing = await startFactory(registry, keys.key, ["--secure-boot-key", join(keysDir, "db.key"), "--secure-boot-cert", join(keysDir, "db.crt")]);
  const id = await createSchematic(signing.address, "platform: minimal\nextensions: [hello]\noutputs: [uki, installer]\nsecureBoot: true\n");
  const signed = (await whenBuilt(signing.address, `/image/${id}/${RELEASE}/uki.signed.efi`)).body;
  await writeFile(join(dir, "uki.signed.efi"), signed);
  const verified = await execa("sbverify", ["--cert", join(keysDir, "db.crt"), join(dir, "uki.signed.efi")], { reject: false, all: true });
  assert.equal(verified.exitCode, 0, verified.all);
  const other = await execa("sbverify", ["--cert", join(keysDir, "KEK.crt"), join(dir, "uki.signed.efi")], { reject: false });
  assert.notEqual(other.exitCode, 0, "signed by the db key, not any key");
  const page = (await http(signing.address, "GET", `/ui?version=${RELEASE}&platform=minimal&arch=x86_64&extensions=chosen`)).body.toString();
  assert.ok(page.includes('name="secureboot" value="on"'));
  const refused = await bronze(["factory", "serve", "--listen", "127.0.0.1:0", "--registry", `${registry}/factory`, "--sign-key", keys.key, "--secure-boot-key", join(keysDir, "db.key"), "--plain-http"]);
  assert.equal(refused.exitCode, 2);
  assert.match(String(refused.all), /--secure-boot-key and --secure-boot-cert come together/);
});

test("bad requests are refused with a 4xx that says why: malformed, oversized, unknown extensions or keys, path tricks, other releases, no token, too many requests", async () => {
  const refusals: [string, string, string | undefined, number, RegExp][] = [
    ["POST", "/schematics", "platform: [minimal\n", 400, /schematic:\d+: not valid YAML/],
    ["POST", "/schematics", `platform: minimal\n#${"x".repeat(20_000)}\n`, 413, /at most 16384 bytes/],
    ["POST", "/schematics", "platform: minimal\nextensions: [openssh]\n", 400, /schematic:2: extension 'openssh' is not in the catalog; it offers confined, hello/],
    ["POST", "/schematics", "platform: minimal\nextensions:\n  - image: evil.example/ext@sha256:" + "0".repeat(64) + "\n", 400, /schematic:3: an extension is a catalog name \(e\.g\. confined\), NAME@sha256:\.\.\. or HOST\/REPO@sha256:\.\.\., written as one string/],
    ["POST", "/schematics", `platform: minimal\nextensions: ["evil.example/ext@sha256:${"0".repeat(64)}"]\n`, 400, /schematic:2: this factory builds catalog extensions only \(confined, hello\); it trusts no key for other images/],
    ["POST", "/schematics", `platform: minimal\nextensions: ["hello@sha256:${"0".repeat(64)}"]\n`, 400, /schematic:2: extension 'hello' is built from source here: it cannot be pinned by digest/],
    ["POST", "/schematics", "platform: minimal\nsigned: true\n", 400, /unknown key 'signed'/],
    ["POST", "/schematics", "platform: minimal\noutputs: [uki, installer, disk]\n", 400, /the factory does not serve disk \(a file as large as the disk\); name outputs such as raw\.zst/],
    ["POST", "/schematics", "platform: azure\n", 400, /the factory does not serve vhd \(a file as large as the disk, which platform azure makes\)/],
    ["POST", "/schematics", "platform: minimal\nsecureBoot: true\n", 400, /schematic:2: this factory holds no Secure Boot key to sign with/],
    ["GET", "/schematics/../../etc/passwd", undefined, 404, /not found/],
    ["GET", `/schematics/${"0".repeat(64)}`, undefined, 404, /no schematic 0{64}; POST it to \/schematics first/],
    ["GET", "/schematics/%2e%2e%2fetc", undefined, 400, /is not a schematic ID/],
    ["GET", `/image/${"a".repeat(64)}/${RELEASE}/..%2f..%2fetc%2fpasswd`, undefined, 400, /is not a file name of an image/],
    ["GET", `/image/${"a".repeat(64)}/0.0.1/uki.efi`, undefined, 404, new RegExp(`serves release ${RELEASE.replaceAll(".", "\\.")}, not '0\\.0\\.1'`)],
    ["GET", `/v2/installer/${"a".repeat(64)}/manifests/latest`, undefined, 404, /has the tag 0\.1\.1 \(this factory's release\), not 'latest'/],
    ["GET", "/v2/other/repo/manifests/x", undefined, 404, /serves \/v2\/installer\/ID/],
    ["DELETE", "/schematics", undefined, 405, /POST a schematic/],
  ];
  for (const [method, path, body, status, message] of refusals) {
    const answer = await http(first.address, method, path, body);
    assert.equal(answer.status, status, `${method} ${path}: ${answer.body.toString()}`);
    assert.match(answer.body.toString(), message, `${method} ${path}`);
  }
  const id = await createSchematic(first.address, HELLO);
  await whenBuilt(first.address, `/image/${id}/${RELEASE}/uki.efi`);
  const missing = await http(first.address, "GET", `/image/${id}/${RELEASE}/passwd`);
  assert.equal(missing.status, 404);
  assert.match(missing.body.toString(), /has no passwd; it has .*uki\.efi/);

  // what a factory serves is signed: it does not start without its key
  const unsigned = await bronze(["factory", "serve", "--listen", "127.0.0.1:0", "--registry", `${registry}/factory`, "--plain-http"]);
  assert.equal(unsigned.exitCode, 2, String(unsigned.all));
  assert.match(String(unsigned.all), /required option '--sign-key <key>' not specified/);

  // schematic creation behind a token; a client over its rate is told to wait
  const tokenFile = join(dir, "token");
  await writeFile(tokenFile, "s3cret-token\n");
  const guarded = await startFactory(registry, keys.key, ["--token-file", tokenFile, "--rate", "4"]);
  const denied = await http(guarded.address, "POST", "/schematics", HELLO);
  assert.equal(denied.status, 401);
  assert.equal(denied.headers["www-authenticate"], 'Bearer realm="bronze factory"');
  assert.equal((await http(guarded.address, "POST", "/schematics", HELLO, { Authorization: "Bearer wrong" })).status, 401);
  assert.equal(await createSchematic(guarded.address, HELLO, { Authorization: "Bearer s3cret-token" }), id);
  assert.equal((await http(guarded.address, "GET", `/schematics/${id}`)).status, 200);
  const over = await http(guarded.address, "GET", `/schematics/${id}`);
  assert.equal(over.status, 429);
  // told to wait until the oldest of its last 4 requests is a minute old
  const retryAfter = Number(over.headers["retry-after"]);
  assert.ok(retryAfter >= 50 && retryAfter <= 60, `Retry-After: ${retryAfter}`);
  // SIGTERM stops a factory at once: all it knows is in the registry
  const started = Date.now();
  assert.deepEqual(await guarded.stop(), { exitCode: 0, signal: undefined });
  assert.ok(Date.now() - started < 3000, `stopped in ${Date.now() - started} ms`);
  assert.match(guarded.log(), /SIGTERM: stopping/);
});
