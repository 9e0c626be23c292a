import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { test } from "node:test";
import { bundleToJSON } from "@sigstore/bundle";
import { DSSEBundleBuilder } from "@sigstore/sign";
import { checkBundle, IMAGE_SIGNATURE_PREDICATE, IN_TOTO_PAYLOAD_TYPE, keyHint, signStatement, statementBytes } from "../../src/oci/sigstore.ts";
import { seededRandom } from "../helpers/random.ts";
import { independentVerify } from "../helpers/sigstore.ts";

const signer = generateKeyPairSync("ec", { namedCurve: "P-256" });
const stranger = generateKeyPairSync("ec", { namedCurve: "P-256" });
const DIGEST = `sha256:${"ab".repeat(32)}`;
const statement = statementBytes([{ name: "registry.test/bronze/installer", digest: DIGEST }], IMAGE_SIGNATURE_PREDICATE, {});

test("a bundle bronze signs is verified by sigstore-js and by bronze, and names the digest it signs", () => {
  const bundle = signStatement(signer.privateKey, statement);
  independentVerify(bundle, signer.publicKey);
  const check = checkBundle("bundle", bundle, [stranger.publicKey, signer.publicKey], DIGEST, IMAGE_SIGNATURE_PREDICATE);
  assert.ok("keyIndex" in check, JSON.stringify(check));
  assert.equal(check.keyIndex, 1);
  assert.equal(check.statement.subject[0]?.digest.sha256, DIGEST.slice(7));
  assert.throws(() => independentVerify(bundle, stranger.publicKey), /key not found/);
});

test("bronze verifies a bundle that sigstore-js wrote", async () => {
  const builder = new DSSEBundleBuilder({
    signer: {
      sign: (data: Buffer) =>
        Promise.resolve({
          signature: sign("sha256", data, signer.privateKey),
          key: { $case: "publicKey" as const, publicKey: signer.publicKey.export({ type: "spki", format: "pem" }).toString(), hint: keyHint(signer.publicKey) },
        }),
    },
    witnesses: [],
  });
  const theirs = Buffer.from(JSON.stringify(bundleToJSON(await builder.create({ data: statement, type: IN_TOTO_PAYLOAD_TYPE }))));
  const check = checkBundle("their bundle", theirs, [signer.publicKey], DIGEST, IMAGE_SIGNATURE_PREDICATE);
  assert.ok("keyIndex" in check, JSON.stringify(check));
  assert.match(JSON.stringify(checkBundle("their bundle", theirs, [stranger.publicKey], DIGEST, IMAGE_SIGNATURE_PREDICATE)), /does not verify with any trusted key/);
});

test("another key, an altered statement, another digest or another predicate is refused, by both verifiers where they check it", () => {
  const bundle = signStatement(signer.privateKey, statement);
  const refused = (bytes: Buffer, digest = DIGEST, predicate = IMAGE_SIGNATURE_PREDICATE) => {
    const check = checkBundle("bundle", bytes, [signer.publicKey], digest, predicate);
    assert.ok("problem" in check, "refused");
    return check.problem;
  };
  assert.match(refused(signStatement(stranger.privateKey, statement)), /does not verify with any trusted key/);
  const altered = JSON.parse(bundle.toString()) as { dsseEnvelope: { payload: string } };
  altered.dsseEnvelope.payload = Buffer.from(statement.toString().replace("ab", "cd")).toString("base64");
  const alteredBytes = Buffer.from(JSON.stringify(altered));
  assert.match(refused(alteredBytes), /does not verify/);
  assert.throws(() => independentVerify(alteredBytes, signer.publicKey), /signature/i);
  assert.match(refused(bundle, `sha256:${"cd".repeat(32)}`), new RegExp(`signed for ${DIGEST}, not for sha256:cdcd`));
  assert.match(refused(bundle, DIGEST, "https://slsa.dev/provenance/v1"), /predicateType is "https:\/\/sigstore.dev\/cosign\/sign\/v1", not https:\/\/slsa.dev\/provenance\/v1/);
  assert.match(refused(Buffer.from("[1]")), /a JSON object was expected/);
  assert.match(refused(Buffer.from(JSON.stringify({ mediaType: "text/plain" }))), /not a Sigstore bundle's/);
});

test("fuzz: 300 mutated bundles are each refused with a reason or verified, never an internal error", () => {
  const random = seededRandom(21);
  const original = signStatement(signer.privateKey, statement);
  const envelope = JSON.parse(original.toString()) as Record<string, unknown>;
  const mutations: (() => Buffer)[] = [
    () => {
      const b = Buffer.from(original);
      for (let i = 0; i < 1 + Math.floor(random() * 4); i++) b[Math.floor(random() * b.length)] = Math.floor(random() * 256);
      return b;
    },
    () => original.subarray(0, Math.floor(random() * original.length)),
    () => {
      const copy = structuredClone(envelope) as { dsseEnvelope: Record<string, unknown> };
      const fields = ["payload", "payloadType", "signatures"];
      const values = [null, 7, "", "AAAA", [], {}, [{ sig: 3 }], [null]];
      copy.dsseEnvelope[fields[Math.floor(random() * fields.length)] as string] = values[Math.floor(random() * values.length)];
      return Buffer.from(JSON.stringify(copy));
    },
    () => {
      const payload = Buffer.from(JSON.stringify({ _type: random() < 0.5 ? 1 : "https://in-toto.io/Statement/v1", subject: random() < 0.5 ? "x" : [null, { digest: null }], predicateType: IMAGE_SIGNATURE_PREDICATE }));
      return signStatement(signer.privateKey, payload);
    },
  ];
  let verified = 0;
  for (let i = 0; i < 300; i++) {
    const mutated = (mutations[i % mutations.length] as () => Buffer)();
    const check = checkBundle(`case ${i}`, mutated, [signer.publicKey], DIGEST, IMAGE_SIGNATURE_PREDICATE);
    if ("problem" in check) assert.match(check.problem, new RegExp(`^case ${i}`));
    else verified++;
  }
  // a flipped byte can land in whitespace-free JSON only harmlessly in a few places (a key's case, say)
  assert.ok(verified < 30, `${verified} mutated bundles verified`);
});

test("the key hint is the SHA-256 of the public key's SubjectPublicKeyInfo, the same from either half", () => {
  assert.equal(keyHint(signer.privateKey), keyHint(createPublicKey(signer.privateKey)));
  assert.match(keyHint(signer.publicKey), /^[0-9a-f]{64}$/);
});
