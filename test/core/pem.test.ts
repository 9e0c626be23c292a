import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { test } from "node:test";
import { isEncryptedPrivateKey, pemLabels } from "../../src/core/pem.ts";

test("PEM labels are read, and keys that need a passphrase are told apart", () => {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
  const plain = privateKey.export({ format: "pem", type: "pkcs8" }) as string;
  const encrypted = privateKey.export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase: "x" }) as string;
  const legacy = privateKey.export({ format: "pem", type: "pkcs1", cipher: "aes-256-cbc", passphrase: "x" }) as string;
  assert.deepEqual(pemLabels(plain), ["PRIVATE KEY"]);
  assert.deepEqual(pemLabels(encrypted), ["ENCRYPTED PRIVATE KEY"]);
  assert.equal(isEncryptedPrivateKey(plain), false);
  assert.equal(isEncryptedPrivateKey(encrypted), true);
  assert.equal(isEncryptedPrivateKey(legacy), true, "PKCS#1 with a Proc-Type header");
  assert.deepEqual(pemLabels("no PEM here"), []);
});
