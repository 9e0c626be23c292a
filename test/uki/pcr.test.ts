import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, sign, verify } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { DEFAULT_ARCH } from "../../src/core/arch.ts";
import { readSection } from "../../src/uki/pe.ts";
import { BOOT_PHASES, policyPcrDigest, predictPcr11, type PcrSigner } from "../../src/uki/pcr.ts";
import { assembleUki } from "../../src/uki/uki.ts";
import { tempDir } from "../helpers/tmp.ts";

const dir = await tempDir();
const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signer: PcrSigner = { publicKey, sign: (digest) => sign("sha256", digest, privateKey) };

async function signedUki(change: { cmdline?: string; initrd?: string; osRelease?: string } = {}): Promise<Uint8Array> {
  return assembleUki({
    stub: await readFile(DEFAULT_ARCH.stub),
    // a real PE with a SizeOfImage stands in for the kernel
    linux: await readFile(DEFAULT_ARCH.bootloader),
    initrd: Buffer.from((change.initrd ?? "initrd bytes").repeat(1000)),
    osRelease: change.osRelease ?? "ID=bronze\n",
    cmdline: change.cmdline ?? "console=ttyS0",
    uname: "6.1.0-test",
    pcrSigner: signer,
  });
}

interface PcrSig {
  sha256: { pcrs: number[]; pkfp: string; pol: string; sig: string }[];
}

test(".pcrsig holds one policy per boot phase, each signed by the key whose public half is .pcrpkey (openssl's PEM of it, its fingerprint)", async () => {
  const uki = await signedUki();
  const pem = Buffer.from(readSection(uki, ".pcrpkey") ?? []).toString();
  const keyFile = join(dir, "pcr.pem");
  await writeFile(keyFile, pem);
  const der = (await execa("openssl", ["rsa", "-pubin", "-in", keyFile, "-RSAPublicKey_out", "-outform", "DER"], { encoding: "buffer" })).stdout;
  const signature = JSON.parse(Buffer.from(readSection(uki, ".pcrsig") ?? []).toString()) as PcrSig;
  const predictions = predictPcr11(uki);
  assert.deepEqual(predictions.map((p) => p.phase), BOOT_PHASES.map((_, i) => BOOT_PHASES.slice(0, i + 1).join(":")));
  assert.equal(signature.sha256.length, predictions.length);
  for (const [i, entry] of signature.sha256.entries()) {
    assert.deepEqual(entry.pcrs, [11]);
    assert.equal(entry.pkfp, createHash("sha256").update(der).digest("hex"));
    const policy = policyPcrDigest(predictions[i]!.sha256);
    assert.equal(entry.pol, policy.toString("hex"));
    assert.ok(verify("sha256", policy, pem, Buffer.from(entry.sig, "base64")), `the ${predictions[i]!.phase} signature verifies`);
  }
});

test("each measured section moves PCR 11, .pcrsig does not; the same inputs give the same bytes", async () => {
  const uki = await signedUki();
  assert.deepEqual(await signedUki(), uki, "PKCS#1 v1.5: signing again gives the same UKI");
  const ready = (image: Uint8Array) => predictPcr11(image).at(-1)!.sha256.toString("hex");
  for (const change of [{ cmdline: "console=ttyS1" }, { initrd: "initrd byteS" }, { osRelease: "ID=bronze2\n" }]) {
    assert.notEqual(ready(await signedUki(change)), ready(uki), `${JSON.stringify(change)}: a different PCR 11`);
  }
  const resigned = Buffer.from(uki);
  const sig = resigned.indexOf('"sig":"') + 7;
  resigned[sig] = resigned[sig] === 0x41 ? 0x42 : 0x41;
  assert.equal(ready(resigned), ready(uki), ".pcrsig is not measured");
});
