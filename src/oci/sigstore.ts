/**
 * Sigstore bundles (v0.3) holding a DSSE envelope of an in-toto statement, signed with a key as cosign 3
 * signs images (predicate https://sigstore.dev/cosign/sign/v1) and attestations (SLSA provenance, SBOMs).
 * No transparency log and no timestamp: the trust is in the key alone (cosign --tlog-upload=false).
 * ECDSA nonces are random, so a signature's bytes differ between runs; what it signs does not.
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { parseObject } from "./descriptor.ts";

export const BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const IMAGE_SIGNATURE_PREDICATE = "https://sigstore.dev/cosign/sign/v1";

export interface StatementSubject {
  name: string;
  /** sha256:<hex> */
  digest: string;
}

export interface Statement {
  predicateType: string;
  predicate: unknown;
  subject: { name?: string; digest: Record<string, string> }[];
}

/** An in-toto v1 statement about the subjects. */
export function statementBytes(subjects: readonly StatementSubject[], predicateType: string, predicate: unknown): Buffer {
  const subject = subjects.map((s) => ({ name: s.name, digest: { sha256: s.digest.replace(/^sha256:/, "") } }));
  return Buffer.from(JSON.stringify({ _type: STATEMENT_TYPE, subject, predicateType, predicate }));
}

/** DSSE's pre-authentication encoding: what the signature covers, type and body both length-prefixed. */
export function preAuthEncoding(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType);
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** The name a bundle gives its public key: the SHA-256 of the key's SubjectPublicKeyInfo, in hex. */
export function keyHint(key: KeyObject): string {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  return createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("hex");
}

/** A bundle of `statement` signed by `key` (ECDSA, DER signature as Sigstore's verifiers expect). */
export function signStatement(key: KeyObject, statement: Buffer): Buffer {
  const signature = sign("sha256", preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, statement), key);
  return Buffer.from(
    JSON.stringify({
      mediaType: BUNDLE_MEDIA_TYPE,
      verificationMaterial: { publicKey: { hint: keyHint(key) }, tlogEntries: [], timestampVerificationData: { rfc3161Timestamps: [] } },
      dsseEnvelope: { payload: statement.toString("base64"), payloadType: IN_TOTO_PAYLOAD_TYPE, signatures: [{ sig: signature.toString("base64"), keyid: "" }] },
    }),
  );
}

/** A bundle that verified: by which key, the statement, and the digest of the statement's bytes (what was signed). */
export type BundleCheck = { keyIndex: number; statement: Statement; statementDigest: string } | { problem: string };

const isString = (v: unknown): v is string => typeof v === "string";

/**
 * Whether the bundle is a DSSE envelope signed by one of the trusted keys whose statement has `predicateType`
 * and names `digest` among its subjects. `where` names the bundle in what is wrong with it.
 */
export function checkBundle(where: string, bytes: Buffer, trusted: readonly KeyObject[], digest: string, predicateType: string): BundleCheck {
  let bundle: Record<string, unknown>;
  try {
    bundle = parseObject(where, bytes);
  } catch (e) {
    return { problem: (e as Error).message };
  }
  if (!isString(bundle.mediaType) || !bundle.mediaType.startsWith("application/vnd.dev.sigstore.bundle")) {
    return { problem: `${where}: mediaType ${JSON.stringify(bundle.mediaType)} is not a Sigstore bundle's` };
  }
  const envelope = bundle.dsseEnvelope as { payload?: unknown; payloadType?: unknown; signatures?: unknown } | undefined;
  if (!envelope || typeof envelope !== "object") return { problem: `${where}: holds no dsseEnvelope (a message signature is not an image signature)` };
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) return { problem: `${where}: dsseEnvelope.payloadType is ${JSON.stringify(envelope.payloadType)}, not ${IN_TOTO_PAYLOAD_TYPE}` };
  if (!isString(envelope.payload) || !Array.isArray(envelope.signatures)) return { problem: `${where}: dsseEnvelope needs a base64 payload and a signatures list` };
  const payload = Buffer.from(envelope.payload, "base64");
  const signed = preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload);
  const signatures = (envelope.signatures as { sig?: unknown }[]).map((s) => (s && isString(s.sig) ? Buffer.from(s.sig, "base64") : Buffer.alloc(0)));
  const verifies = (key: KeyObject, signature: Buffer) => {
    try {
      return signature.length > 0 && verify("sha256", signed, key, signature);
    } catch {
      return false;
    }
  };
  const keyIndex = trusted.findIndex((key) => signatures.some((s) => verifies(key, s)));
  if (keyIndex < 0) return { problem: `${where}: its signature does not verify with any trusted key (signed by another key, or altered)` };
  let statement: Statement & { _type?: unknown };
  try {
    statement = parseObject(`${where}: statement`, payload) as unknown as typeof statement;
  } catch (e) {
    return { problem: (e as Error).message };
  }
  if (statement._type !== STATEMENT_TYPE) return { problem: `${where}: statement _type is ${JSON.stringify(statement._type)}, not ${STATEMENT_TYPE}` };
  if (statement.predicateType !== predicateType) return { problem: `${where}: predicateType is ${JSON.stringify(statement.predicateType)}, not ${predicateType}` };
  const hex = digest.replace(/^sha256:/, "");
  const subjects = Array.isArray(statement.subject) ? statement.subject : [];
  if (!subjects.some((s) => s?.digest?.sha256 === hex)) {
    return { problem: `${where}: signed for ${subjects.map((s) => `sha256:${s?.digest?.sha256 ?? "?"}`).join(", ") || "no subject"}, not for ${digest}` };
  }
  return { keyIndex, statement, statementDigest: `sha256:${createHash("sha256").update(payload).digest("hex")}` };
}
