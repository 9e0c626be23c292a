import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { ARCHES, DEFAULT_ARCH } from "../../src/core/arch.ts";
import { parseAuthenticatedUpdate } from "../../src/secureboot/efi-vars.ts";
import { enrollmentVariables } from "../../src/secureboot/keys.ts";
import { listVariables, setVariables, VariableStoreError, withoutVariables } from "../../src/secureboot/ovmf-store.ts";
import { signPe } from "../../src/uki/authenticode.ts";
import { bronze } from "../helpers/cli.ts";
import { tempDir } from "../helpers/tmp.ts";

// bronze keys generate against efitools, the reference implementation of the UEFI formats:
// cert-to-efi-sig-list must write the same signature lists and sign-efi-sig-list, given the
// same key and time stamp, the same signed updates, byte for byte.

async function generated(): Promise<string> {
  const dir = join(await tempDir(), "keys");
  const result = await bronze(["keys", "generate", dir, "--common-name", "bronze test"]);
  assert.equal(result.exitCode, 0, String(result.all));
  return dir;
}

/** The time stamp of a .auth file as sign-efi-sig-list's -t wants it. */
function timestampOf(auth: Buffer): string {
  const { time } = parseAuthenticatedUpdate(auth);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${time.readUInt16LE(0)}-${two(time.readUInt8(2))}-${two(time.readUInt8(3))} ${two(time.readUInt8(4))}:${two(time.readUInt8(5))}:${two(time.readUInt8(6))}`;
}

test("keys generate writes PK, KEK and db with signature lists and signed updates identical to efitools'; keys are private", async () => {
  const dir = await generated();
  assert.deepEqual((await readdir(dir)).sort(), ["GUID", "KEK.auth", "KEK.crt", "KEK.der", "KEK.esl", "KEK.key", "PK.auth", "PK.crt", "PK.der", "PK.esl", "PK.key", "db.auth", "db.crt", "db.der", "db.esl", "db.key", "noPK.auth"]);
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
  for (const role of ["PK", "KEK", "db"]) assert.equal((await stat(join(dir, `${role}.key`))).mode & 0o777, 0o600, `${role}.key is private`);
  const subject = await execa("openssl", ["x509", "-in", join(dir, "KEK.crt"), "-noout", "-subject"]);
  assert.match(subject.stdout, /CN ?= ?bronze test KEK/);

  const owner = (await readFile(join(dir, "GUID"), "utf8")).trim();
  const scratch = await tempDir();
  for (const role of ["PK", "KEK", "db"]) {
    const reference = join(scratch, `${role}.esl`);
    await execa("cert-to-efi-sig-list", ["-g", owner, join(dir, `${role}.crt`), reference]);
    assert.deepEqual(await readFile(join(dir, `${role}.esl`)), await readFile(reference), `${role}.esl`);
  }
  const time = timestampOf(await readFile(join(dir, "PK.auth")));
  const signers = { PK: "PK", KEK: "PK", db: "KEK" } as const;
  for (const [role, signer] of Object.entries(signers)) {
    const reference = join(scratch, `${role}.auth`);
    await execa("sign-efi-sig-list", ["-g", owner, "-t", time, "-k", join(dir, `${signer}.key`), "-c", join(dir, `${signer}.crt`), role, join(dir, `${role}.esl`), reference]);
    assert.deepEqual(await readFile(join(dir, `${role}.auth`)), await readFile(reference), `${role}.auth, signed by ${signer}`);
  }
  const empty = join(scratch, "empty");
  await writeFile(empty, "");
  await execa("sign-efi-sig-list", ["-t", time, "-k", join(dir, "PK.key"), "-c", join(dir, "PK.crt"), "PK", empty, join(scratch, "noPK.auth")]);
  assert.deepEqual(await readFile(join(dir, "noPK.auth")), await readFile(join(scratch, "noPK.auth")), "noPK.auth");
});

test("the db key signs EFI images that sbverify accepts with db.crt", async () => {
  const dir = await generated();
  const signed = signPe(await readFile(DEFAULT_ARCH.bootloader), createPrivateKey(await readFile(join(dir, "db.key"))), await readFile(join(dir, "db.der")));
  const file = join(dir, "..", "systemd-boot.signed.efi");
  await writeFile(file, signed);
  const verify = await execa("sbverify", ["--cert", join(dir, "db.crt"), file], { reject: false, all: true });
  assert.equal(verify.exitCode, 0, verify.all);
  const other = await execa("sbverify", ["--cert", join(dir, "KEK.crt"), file], { reject: false });
  assert.notEqual(other.exitCode, 0, "KEK did not sign it");
});

test("keys generate never overwrites keys and refuses bad options, exit code 2", async () => {
  const dir = await generated();
  const before = await readFile(join(dir, "PK.key"));
  const again = await bronze(["keys", "generate", dir]);
  assert.equal(again.exitCode, 2);
  assert.match(String(again.stderr), /exists and is not empty; keys are never overwritten/);
  assert.deepEqual(await readFile(join(dir, "PK.key")), before);
  const bits = await bronze(["keys", "generate", join(dir, "..", "other"), "--key-bits", "1024"]);
  assert.equal(bits.exitCode, 2);
  assert.match(String(bits.stderr), /--key-bits.*use 2048, 3072 or 4096/);
  assert.equal(await stat(join(dir, "..", "other")).catch(() => undefined), undefined, "nothing half-written");
});

test("enrolment writes PK, KEK, db and SecureBootEnable into OVMF's variable store; setting again replaces them", async () => {
  const dir = await generated();
  const template = await readFile(DEFAULT_ARCH.firmware.vars);
  assert.deepEqual(listVariables(template), [], "Debian's OVMF_VARS_4M.fd starts empty (setup mode)");
  const variables = await enrollmentVariables(dir);
  const enrolled = setVariables(template, variables);
  assert.equal(enrolled.length, template.length);
  const names = (store: Buffer) => listVariables(store).map((v) => v.name);
  assert.deepEqual(names(enrolled), ["PK", "KEK", "db", "SecureBootEnable"]);
  const db = variables.find((v) => v.name === "db");
  assert.ok(db && enrolled.includes(Buffer.from(db.data)), "db holds the signature list of db.crt");
  assert.deepEqual(Buffer.from(db.data), await readFile(join(dir, "db.esl")));
  assert.deepEqual(names(setVariables(enrolled, variables)), ["PK", "KEK", "db", "SecureBootEnable"], "old copies marked deleted");

  assert.throws(() => setVariables(Buffer.alloc(4096), variables), VariableStoreError);
  const huge = [{ name: "db", vendor: "d719b2cb-3d3a-4596-a3bc-dad00e67656f", attributes: 0x27, data: Buffer.alloc(template.length) }];
  assert.throws(() => setVariables(template, huge), /no room/);
  await assert.rejects(enrollmentVariables(join(dir, "..")), /PK\.auth: missing; give a directory made by `bronze keys generate`/);
});

test("a snakeoil store emptied is the firmware's own empty store: OVMF's byte for byte; for AAVMF, whose blank store is not formatted, one that takes the keys", async () => {
  const dir = await generated();
  const emptied = withoutVariables(await readFile(DEFAULT_ARCH.firmware.snakeoilVars));
  assert.deepEqual(emptied, await readFile(DEFAULT_ARCH.firmware.vars), "OVMF_VARS_4M.snakeoil.fd emptied is OVMF_VARS_4M.fd");
  for (const arch of ARCHES) {
    const snakeoil = await readFile(arch.firmware.snakeoilVars);
    assert.ok(listVariables(snakeoil).some((v) => v.name === "PK"), `${arch.name}: the snakeoil store holds keys`);
    const empty = withoutVariables(snakeoil);
    assert.deepEqual(listVariables(empty), [], arch.name);
    const names = listVariables(setVariables(empty, await enrollmentVariables(dir))).map((v) => v.name);
    assert.deepEqual(names, ["PK", "KEK", "db", "SecureBootEnable"], arch.name);
  }
  const blank = await readFile(ARCHES.find((a) => a !== DEFAULT_ARCH)?.firmware.vars ?? "");
  assert.throws(() => setVariables(blank, []), /not a firmware volume/, "AAVMF_VARS.fd is blank until the firmware formats it");
});
