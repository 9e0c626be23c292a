import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS } from "../../src/boot/qemu.ts";
import { BronzeError } from "../../src/core/errors.ts";
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

async function refused(uki: string): Promise<string> {
  const error = await boot({ kind: "uki", uki }, { ...BOOT_DEFAULTS, secureBoot: true }).then(
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
});
