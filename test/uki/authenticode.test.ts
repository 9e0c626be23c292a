import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { DEFAULT_ARCH } from "../../src/core/arch.ts";
import { authenticodeDigest, signPe } from "../../src/uki/authenticode.ts";
import { parsePe, PeFormatError } from "../../src/uki/pe.ts";
import { tempDir } from "../helpers/tmp.ts";

// Our Authenticode signer against the independent tools: sbverify checks the signature and
// recomputes the image digest; sbsign signs the same image for comparison.

async function keyPair(dir: string, name: string): Promise<{ key: string; cert: string; certDer: Buffer }> {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  await execa("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-subj", `/CN=bronze ${name} test`, "-days", "2", "-sha256"]);
  const der = await execa("openssl", ["x509", "-in", cert, "-outform", "DER"], { encoding: "buffer" });
  return { key, cert, certDer: Buffer.from(der.stdout) };
}

test("a signed systemd-boot passes sbverify with the signing certificate, and fails with another or once altered", async () => {
  const dir = await tempDir();
  const mine = await keyPair(dir, "db");
  const other = await keyPair(dir, "other");
  const image = await readFile(DEFAULT_ARCH.bootloader);
  const signed = signPe(image, createPrivateKey(await readFile(mine.key)), mine.certDer);
  const file = join(dir, "signed.efi");
  await writeFile(file, signed);

  const ok = await execa("sbverify", ["--cert", mine.cert, file], { reject: false, all: true });
  assert.equal(ok.exitCode, 0, ok.all);
  assert.match(ok.all ?? "", /Signature verification OK/);
  const wrong = await execa("sbverify", ["--cert", other.cert, file], { reject: false, all: true });
  assert.notEqual(wrong.exitCode, 0, "another certificate does not verify it");

  const altered = Buffer.from(signed);
  const middle = Math.floor(image.length / 2);
  altered[middle] = (altered[middle] as number) ^ 0xff;
  await writeFile(join(dir, "altered.efi"), altered);
  const tampered = await execa("sbverify", ["--cert", mine.cert, join(dir, "altered.efi")], { reject: false, all: true });
  assert.notEqual(tampered.exitCode, 0, "a changed byte breaks the digest");
});

test("signing is reproducible, and covers the same image digest as sbsign's signature", async () => {
  const dir = await tempDir();
  const mine = await keyPair(dir, "db");
  const image = await readFile(DEFAULT_ARCH.bootloader);
  const key = createPrivateKey(await readFile(mine.key));
  const one = signPe(image, key, mine.certDer);
  const two = signPe(image, key, mine.certDer);
  assert.ok(one.equals(two), "same image, key and certificate: same bytes");

  await execa("sbsign", ["--key", mine.key, "--cert", mine.cert, "--output", join(dir, "sbsign.efi"), DEFAULT_ARCH.bootloader]);
  const theirs = await readFile(join(dir, "sbsign.efi"));
  assert.deepEqual(authenticodeDigest(theirs), authenticodeDigest(one), "both signatures cover the same Authenticode digest");
  await writeFile(join(dir, "ours.efi"), one);
  for (const f of ["sbsign.efi", "ours.efi"]) {
    const r = await execa("sbverify", ["--cert", mine.cert, join(dir, f)], { reject: false, all: true });
    assert.equal(r.exitCode, 0, `${f}: ${r.all}`);
  }
});

test("an image that is signed already, or a key that is not RSA, is refused", async () => {
  const dir = await tempDir();
  const mine = await keyPair(dir, "db");
  const key = createPrivateKey(await readFile(mine.key));
  const image = await readFile(DEFAULT_ARCH.bootloader);
  const signed = signPe(image, key, mine.certDer);
  assert.throws(() => signPe(signed, key, mine.certDer), (e: unknown) => e instanceof PeFormatError && /signed already/.test(e.message));
  await execa("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", join(dir, "ec.key")]);
  const ec = createPrivateKey(await readFile(join(dir, "ec.key")));
  assert.throws(() => signPe(image, ec, mine.certDer), /needs an RSA key, not ec/);
});

test("an image with bytes between two sections is hashed as the specification and the firmware count it: sbverify verifies our signature", async () => {
  const dir = await tempDir();
  const mine = await keyPair(dir, "db");
  // systemd-boot with its last section moved one FileAlignment further, the bytes between left as they were
  const image = await readFile(DEFAULT_ARCH.bootloader);
  const info = parsePe(image);
  const last = [...info.sections].sort((a, b) => a.pointerToRawData - b.pointerToRawData).at(-1);
  assert.ok(last);
  const moved = info.fileAlignment;
  const gapped = Buffer.concat([image.subarray(0, last.pointerToRawData), Buffer.alloc(moved, 0x5a), image.subarray(last.pointerToRawData)]);
  const peOffset = image.readUInt32LE(0x3c);
  const sectionTable = peOffset + 24 + image.readUInt16LE(peOffset + 20);
  const header = sectionTable + info.sections.findIndex((s) => s.name === last.name) * 40;
  gapped.writeUInt32LE(last.pointerToRawData + moved, header + 20);
  assert.equal(parsePe(gapped).sections.find((s) => s.name === last.name)?.pointerToRawData, last.pointerToRawData + moved);

  const file = join(dir, "gapped.signed.efi");
  await writeFile(file, signPe(gapped, createPrivateKey(await readFile(mine.key)), mine.certDer));
  const verified = await execa("sbverify", ["--cert", mine.cert, file], { reject: false, all: true });
  assert.equal(verified.exitCode, 0, verified.all);
  assert.match(verified.all ?? "", /gap in section table/, "sbverify saw the gap");
});
