import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { findPrivateKeys, keyNeedles } from "../../src/kernel/key-scan.ts";
import { tempDir } from "../helpers/tmp.ts";

test("a key is found as PEM, and by its exact bytes as PKCS#1 and PKCS#8 DER, even inside other files", async () => {
  const dir = await tempDir();
  const pem = join(dir, "key.pem");
  await execa("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pem]);
  await execa("openssl", ["pkey", "-in", pem, "-outform", "DER", "-out", join(dir, "pkcs8.der")]);
  await execa("openssl", ["rsa", "-in", pem, "-outform", "DER", "-traditional", "-out", join(dir, "pkcs1.der")]);
  await execa("openssl", ["pkey", "-in", pem, "-pubout", "-outform", "DER", "-out", join(dir, "public.der")]);
  await execa("openssl", ["pkey", "-in", pem, "-pubout", "-out", join(dir, "public.pem")]);
  // a DER key buried across the scanner's chunk boundary of a large file
  const noise = randomBytes((4 << 20) - 7);
  await writeFile(join(dir, "embedded.bin"), Buffer.concat([noise, await readFile(join(dir, "pkcs1.der")), noise]));
  await writeFile(join(dir, "noise.bin"), randomBytes(9 << 20));
  const needles = keyNeedles(await readFile(pem, "utf8"));

  const relative = (paths: string[]): string[] => paths.map((p) => p.slice(dir.length + 1)).sort();
  assert.deepEqual(relative(await findPrivateKeys([dir], { needles })), ["embedded.bin", "key.pem", "pkcs1.der", "pkcs8.der"]);
  // without the key's bytes only the PEM header can be recognised
  assert.deepEqual(relative(await findPrivateKeys([dir])), ["key.pem"]);
  assert.deepEqual(await findPrivateKeys([dir], { needles, exclude: [join(dir, "key.pem"), join(dir, "pkcs1.der"), join(dir, "pkcs8.der"), join(dir, "embedded.bin")] }), []);
  // and without PEM headers only the key's own bytes count
  await writeFile(join(dir, "other.pem"), await execa("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]).then((r) => r.stdout));
  assert.deepEqual(relative(await findPrivateKeys([dir], { needles, pemHeaders: false })), ["embedded.bin", "key.pem", "pkcs1.der", "pkcs8.der"]);
});

test("a missing directory holds no keys", async () => {
  assert.deepEqual(await findPrivateKeys(["/nonexistent/bronze"]), []);
});
