import assert from "node:assert/strict";
import { X509Certificate, generateKeyPairSync } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { children, DerError, expectTag, integer, octetString, oid, oidText, readTlv, sequence, setOf, TAG, value } from "../../src/core/der.ts";
import { execa } from "execa";
import { tempDir } from "../helpers/tmp.ts";

test("what the writer encodes, the reader reads back: integers, OIDs, octet strings, long lengths, sorted sets", () => {
  const long = Buffer.alloc(300, 7);
  const encoded = sequence(integer(0), integer(128), oid("1.2.840.113549.1.7.2"), octetString(long), setOf(integer(2), integer(1)));
  const root = readTlv(encoded, 0);
  assert.equal(root.tag, TAG.SEQUENCE);
  assert.equal(root.end, encoded.length);
  const [zero, big, id, bytes, set] = children(encoded, root);
  assert.deepEqual(value(encoded, expectTag(zero, TAG.INTEGER, "zero")), Buffer.from([0]));
  assert.deepEqual(value(encoded, expectTag(big, TAG.INTEGER, "128")), Buffer.from([0x00, 0x80]), "a leading zero keeps 128 positive");
  assert.equal(oidText(encoded, expectTag(id, TAG.OID, "oid")), "1.2.840.113549.1.7.2");
  assert.deepEqual(value(encoded, expectTag(bytes, TAG.OCTET_STRING, "octets")), long);
  const members = children(encoded, expectTag(set, TAG.SET, "set")).map((m) => value(encoded, m)[0]);
  assert.deepEqual(members, [1, 2], "DER sorts a SET OF by encoding");
});

test("the reader refuses truncated input and unexpected tags, naming what it expected", () => {
  const encoded = sequence(integer(5));
  assert.throws(() => readTlv(encoded.subarray(0, encoded.length - 1), 0), DerError);
  assert.throws(() => expectTag(readTlv(encoded, 0), TAG.SET, "the signer set"), /the signer set/);
});

test("the reader walks a certificate that openssl wrote, and the writer's OID encoding is openssl's", async () => {
  const dir = await tempDir();
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  await writeFile(join(dir, "key.pem"), privateKey.export({ type: "pkcs8", format: "pem" }));
  await execa("openssl", ["req", "-new", "-x509", "-key", join(dir, "key.pem"), "-subj", "/CN=der test", "-days", "1", "-out", join(dir, "cert.pem")]);
  const der = new X509Certificate(await readFile(join(dir, "cert.pem"))).raw;
  const [tbs, algorithm] = children(der, readTlv(der, 0));
  assert.equal(tbs?.tag, TAG.SEQUENCE);
  const [algorithmId] = children(der, expectTag(algorithm, TAG.SEQUENCE, "signature algorithm"));
  assert.equal(oidText(der, expectTag(algorithmId, TAG.OID, "algorithm")), "1.2.840.10045.4.3.2", "ecdsa-with-SHA256");
  const ours = oid("1.2.840.10045.4.3.2");
  assert.deepEqual(ours, der.subarray(algorithmId!.offset, algorithmId!.end));
});
