import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { DEFAULT_ARCH } from "../../src/core/arch.ts";
import { authenticodeDigest, signPe } from "../../src/uki/authenticode.ts";
import { PeFormatError } from "../../src/uki/pe.ts";
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
