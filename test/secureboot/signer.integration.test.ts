import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS } from "../../src/boot/qemu.ts";
import { BronzeError } from "../../src/core/errors.ts";
import { keyNeedles } from "../../src/kernel/key-scan.ts";
import { findKeyCopies } from "../helpers/keys.ts";
import { readUkiSections } from "../../src/uki/uki.ts";
import { bronze } from "../helpers/cli.ts";
import { PROJECT_ROOT } from "../helpers/tmp.ts";

// Secure Boot enforcing in QEMU: Debian's OVMF_CODE_4M.secboot.fd with a copy of
// OVMF_VARS_4M.snakeoil.fd, whose db holds the package's snakeoil test certificate.
const UKI = join(PROJECT_ROOT, "_out", "minimal", "uki.efi");
const SNAKEOIL_KEY = "/usr/share/ovmf/PkKek-1-snakeoil.key";
const SNAKEOIL_CERT = "/usr/share/ovmf/PkKek-1-snakeoil.pem";

let dir = "";
let passphrase = "";

before(async () => {
  const built = await bronze(["build", "--profile", "minimal"]);
  assert.equal(built.exitCode, 0, String(built.all));
  dir = await mkdtemp(join(tmpdir(), "bronze-secureboot-"));
  passphrase = join(dir, "passphrase");
  await writeFile(passphrase, "snakeoil\n");
});

after(() => rm(dir, { recursive: true, force: true }));

async function sign(out: string, key = SNAKEOIL_KEY, cert = SNAKEOIL_CERT, extra: string[] = ["--key-passphrase-file", passphrase]) {
  const result = await bronze(["secureboot", "sign", UKI, "--key", key, "--cert", cert, "--out", out, ...extra]);
  assert.equal(result.exitCode, 0, String(result.all));
  return out;
}

async function refused(uki: string, secureBootKeys?: string): Promise<string> {
  const error = await boot({ kind: "uki", uki }, { ...BOOT_DEFAULTS, secureBoot: true, secureBootKeys }).then(
    () => assert.fail(`${uki} booted under Secure Boot`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof BronzeError);
  return error.message;
}

test("a UKI signed with the enrolled key boots with Secure Boot enforcing; signing twice gives the same bytes; sbverify accepts it", async () => {
  const signed = await sign(join(dir, "signed.efi"));
  const again = await sign(join(dir, "again.efi"));
  assert.deepEqual(await readFile(signed), await readFile(again), "reproducible signature");
  const sbverify = await execa("sbverify", ["--cert", SNAKEOIL_CERT, signed], { reject: false, all: true });
  assert.equal(sbverify.exitCode, 0, sbverify.all);
  const result = await boot({ kind: "uki", uki: signed }, { ...BOOT_DEFAULTS, secureBoot: true });
  assert.ok(result.console.some((l) => l.includes("secureboot: Secure boot enabled")), "the kernel saw Secure Boot on");
  assert.equal(result.ready.root, "ro");
});

test("with Secure Boot enforcing, the unsigned UKI, one signed by a key not enrolled, and a signed one altered afterwards are refused by the firmware", async () => {
  assert.match(await refused(UKI), /Access Denied|Security Violation/);

  const key = join(dir, "other.key");
  const cert = join(dir, "other.pem");
  await execa("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=not enrolled", "-days", "2"]);
  assert.match(await refused(await sign(join(dir, "foreign.efi"), key, cert, [])), /Access Denied|Security Violation/);

  // one byte of the kernel changed after signing
  const signed = await readFile(await sign(join(dir, "to-alter.efi")));
  const linux = readUkiSections(signed).find((s) => s.name === ".linux")?.data;
  assert.ok(linux);
  const at = signed.indexOf(Buffer.from(linux.subarray(4096, 4160)));
  assert.ok(at > 0);
  signed[at] = (signed[at] as number) ^ 0x01;
  await writeFile(join(dir, "altered.efi"), signed);
  assert.match(await refused(join(dir, "altered.efi")), /Access Denied|Security Violation/);
});

test("bronze build with --secure-boot-key signs the UKI and systemd-boot (the same bytes as secureboot sign, never the key in any output); with keys from `bronze keys generate` enrolled, the disk and the ISO made from that installer boot with Secure Boot enforcing, an ISO that enrols the keys itself boots enforcing from setup mode, and a snakeoil-signed UKI is refused", async () => {
  const started = Date.now() - 1000;
  const keys = join(dir, "keys");
  const generated = await bronze(["keys", "generate", keys]);
  assert.equal(generated.exitCode, 0, String(generated.all));
  const out = join(PROJECT_ROOT, "_out", "minimal");
  const unsigned = await bronze(["build", "--profile", "minimal"]);
  assert.equal(unsigned.exitCode, 0, String(unsigned.all));
  const unsignedSize = (await stat(join(out, "installer.oci.tar"))).size;
  // within the size budget: signing replaces the UKI and systemd-boot in the installer, it does not add copies
  const built = await bronze(["build", "--profile", "minimal", "--secure-boot-key", join(keys, "db.key"), "--secure-boot-cert", join(keys, "db.crt")]);
  assert.equal(built.exitCode, 0, String(built.all));
  const signedSize = (await stat(join(out, "installer.oci.tar"))).size;
  assert.ok(Math.abs(signedSize - unsignedSize) / unsignedSize < 0.01, `installer ${unsignedSize} -> ${signedSize} bytes`);
  // signing is no cached step (the key stays in memory): only the installer that holds the signed files is made
  const ran = /build step\(s\) ran: (.*)/.exec(String(built.stdout))?.[1]?.split(", ") ?? [];
  assert.deepEqual(ran.filter((step) => step !== "installer"), [], String(built.stdout));
  const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as { secureBoot: { signed: string[]; certificateSha256: string }; artifacts: { name: string }[] };
  assert.deepEqual(manifest.secureBoot.signed, ["uki.signed.efi", "systemd-boot.signed.efi"]);
  for (const name of manifest.secureBoot.signed) {
    assert.ok(manifest.artifacts.some((a) => a.name === name), `${name} in the manifest`);
    const verified = await execa("sbverify", ["--cert", join(keys, "db.crt"), join(out, name)], { reject: false, all: true });
    assert.equal(verified.exitCode, 0, `${name}: ${verified.all}`);
  }
  const bySign = await sign(join(dir, "by-sign.efi"), join(keys, "db.key"), join(keys, "db.crt"), []);
  assert.deepEqual(await readFile(join(out, "uki.signed.efi")), await readFile(bySign), "build and secureboot sign give the same bytes");

  // the installer's layers, unpacked, hold the signed images and no byte of the key
  const unpacked = join(dir, "installer-layers");
  await mkdir(unpacked);
  const blobs = join(out, "installer", "blobs", "sha256");
  for (const blob of await readdir(blobs)) {
    const head = await readFile(join(blobs, blob)).then((b) => b.subarray(0, 2));
    if (head[0] === 0x1f && head[1] === 0x8b) await execa("tar", ["-xzf", join(blobs, blob), "-C", unpacked]);
  }
  assert.deepEqual(await readFile(join(unpacked, "usr/install/amd64/uki.signed.efi")), await readFile(join(out, "uki.signed.efi")));
  for (const name of ["uki.efi", "systemd-boot.efi"]) await assert.rejects(stat(join(unpacked, "usr/install/amd64", name)), { code: "ENOENT" }, `${name}: a signed installer ships the signed one only`);
  const needles = keyNeedles(await readFile(join(keys, "db.key"), "utf8"));
  assert.deepEqual(await findKeyCopies([out, unpacked, join(PROJECT_ROOT, ".cache", "bronze")], needles, started), [], "no copy of the signing key");

  // the disk made from the signed installer: signed systemd-boot, then the signed UKI
  const disk = join(dir, "signed.raw");
  const made = await bronze(["image", "disk", "--from", join(out, "installer"), "--out", disk, "--size", "256M"]);
  assert.equal(made.exitCode, 0, String(made.all));
  assert.match(String(made.stdout), /\(Secure Boot signed\)/);
  const booted = await bronze(["boot", disk, "--secure-boot-keys", keys]);
  assert.equal(booted.exitCode, 0, String(booted.all));
  assert.match(String(booted.stdout), /secureboot: Secure boot enabled/);
  assert.match(String(booted.stdout), /bronze: boot ok in [\d.]+ s: root=ro/);
  assert.match(await refused(await sign(join(dir, "snakeoil.efi")), keys), /Access Denied|Security Violation/);

  // the ISO of the same installer holds the signed boot files and boots as a CD-ROM with the keys enrolled
  const iso = join(dir, "signed.iso");
  const madeIso = await bronze(["image", "iso", "--from", join(out, "installer"), "--out", iso]);
  assert.equal(madeIso.exitCode, 0, String(madeIso.all));
  assert.match(String(madeIso.stdout), /\(Secure Boot signed\)/);
  const isoBooted = await bronze(["boot", iso, "--secure-boot-keys", keys]);
  assert.equal(isoBooted.exitCode, 0, String(isoBooted.all));
  assert.match(String(isoBooted.stdout), /DVD-ROM/);
  assert.match(String(isoBooted.stdout), /secureboot: Secure boot enabled/);
  assert.match(String(isoBooted.stdout), /bronze: boot ok in [\d.]+ s: root=ro/);

  // an ISO that enrols the keys itself: on firmware in setup mode systemd-boot enrols them from
  // loader/keys/auto/, resets, and the signed image then boots with Secure Boot enforcing
  const enrollingDir = join(dir, "enrolling");
  await mkdir(enrollingDir);
  const enrolling = join(enrollingDir, "enrolling.iso");
  const madeEnrolling = await bronze(["image", "iso", "--from", join(out, "installer"), "--out", enrolling, "--enroll-keys", keys]);
  assert.equal(madeEnrolling.exitCode, 0, String(madeEnrolling.all));
  const espStart = /First sector: (\d+)/.exec((await execa("sgdisk", ["-i", "2", enrolling])).stdout)?.[1];
  const esp = `${enrolling}@@${Number(espStart) * 512}`;
  const listed = (await execa("mdir", ["-i", esp, "-b", "::/loader/keys/auto"], { env: { MTOOLS_SKIP_CHECK: "1" } })).stdout;
  assert.deepEqual(listed.split("\n").filter(Boolean).map((l) => l.split("/").at(-1)).sort(), ["db.auth", "KEK.auth", "PK.auth"].sort());
  for (const role of ["PK", "KEK", "db"]) {
    const copied = join(dir, `${role}-from-iso.auth`);
    await execa("mcopy", ["-i", esp, `::/loader/keys/auto/${role}.auth`, copied], { env: { MTOOLS_SKIP_CHECK: "1" } });
    assert.deepEqual(await readFile(copied), await readFile(join(keys, `${role}.auth`)), `${role}.auth`);
  }
  assert.deepEqual(await findKeyCopies([enrollingDir], needles, started), [], "no key in the enrolling ISO");
  const enrolled = await bronze(["boot", enrolling, "--secure-boot-setup-mode"]);
  assert.equal(enrolled.exitCode, 0, String(enrolled.all));
  const log = String(enrolled.stdout);
  assert.match(log, /Enrolling secure boot keys from directory: \\loader\\keys\\auto/);
  assert.ok(log.indexOf("Enrolling secure boot keys") < log.indexOf("secureboot: Secure boot enabled"), "enrolled, then booted enforcing");
  assert.match(log, /bronze: boot ok in [\d.]+ s: root=ro/);
});

test("secureboot sign refuses what it cannot sign with the fix, exit code 2", async () => {
  const encrypted = await bronze(["secureboot", "sign", UKI, "--key", SNAKEOIL_KEY, "--cert", SNAKEOIL_CERT, "--out", join(dir, "x.efi")]);
  assert.equal(encrypted.exitCode, 2);
  assert.match(String(encrypted.stderr), /is encrypted; give --key-passphrase-file/);
  const otherKey = join(dir, "mismatch.key");
  await execa("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", otherKey]);
  const mismatch = await bronze(["secureboot", "sign", UKI, "--key", otherKey, "--cert", SNAKEOIL_CERT, "--out", join(dir, "y.efi")]);
  assert.equal(mismatch.exitCode, 2);
  assert.match(String(mismatch.stderr), /do not belong together/);
  const twice = await bronze(["secureboot", "sign", await sign(join(dir, "z.efi")), "--key", SNAKEOIL_KEY, "--cert", SNAKEOIL_CERT, "--key-passphrase-file", passphrase, "--out", join(dir, "zz.efi")]);
  assert.equal(twice.exitCode, 2);
  assert.match(String(twice.stderr), /signed already/);
  const half = await bronze(["build", "--profile", "minimal", "--secure-boot-key", SNAKEOIL_KEY]);
  assert.equal(half.exitCode, 2);
  assert.match(String(half.stderr), /--secure-boot-key needs --secure-boot-cert too/);
  const locked = await bronze(["build", "--profile", "minimal", "--secure-boot-key", SNAKEOIL_KEY, "--secure-boot-cert", SNAKEOIL_CERT]);
  assert.equal(locked.exitCode, 2);
  assert.match(String(locked.stderr), /--secure-boot-key \S+: is encrypted; give --secure-boot-key-passphrase-file/);
});
