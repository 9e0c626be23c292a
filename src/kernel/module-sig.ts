import { verify, X509Certificate } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { children, DerError, expectTag, oidText, raw, readTlv, TAG, value, type Tlv } from "../core/der.ts";

/** The trailer the kernel's sign-file appends after the signature. */
export const MODULE_SIG_MAGIC = Buffer.from("~Module signature appended~\n");
const SIG_INFO_SIZE = 12;
const PKEY_ID_PKCS7 = 2;

const DIGESTS: Record<string, string> = {
  "1.3.14.3.2.26": "sha1",
  "2.16.840.1.101.3.4.2.4": "sha224",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};
const SUBJECT_KEY_IDENTIFIER = "2.5.29.14";

export type ModuleVerdict =
  | { status: "ok"; digest: string }
  | { status: "unsigned" }
  | { status: "malformed"; reason: string }
  | { status: "foreign"; reason: string }
  | { status: "bad-signature"; digest: string };

/** Who signed: issuer and serial, or a subject key identifier. */
type SignerId = { issuer: Buffer; serial: Buffer } | { keyId: Buffer };

interface ParsedSignature {
  content: Buffer;
  signer: SignerId;
  digest: string;
  signature: Buffer;
}

/** Splits a signed module into its content and its PKCS#7 signature. */
export function parseModuleSignature(module: Buffer): ParsedSignature | undefined {
  if (module.length < MODULE_SIG_MAGIC.length || !module.subarray(-MODULE_SIG_MAGIC.length).equals(MODULE_SIG_MAGIC)) return undefined;
  const infoAt = module.length - MODULE_SIG_MAGIC.length - SIG_INFO_SIZE;
  if (infoAt < 0) throw new DerError("signature trailer is truncated");
  if (module[infoAt + 2] !== PKEY_ID_PKCS7) throw new DerError(`signature id type ${module[infoAt + 2]} is not PKCS#7`);
  const sigLength = module.readUInt32BE(infoAt + 8);
  const sigAt = infoAt - sigLength;
  if (sigAt < 0) throw new DerError("signature length runs past the start of the module");
  const pkcs7 = module.subarray(sigAt, infoAt);

  // ContentInfo { signedData OID, [0] SignedData { version, digestAlgorithms, encapContentInfo, ..., signerInfos } }
  const contentInfo = expectTag(readTlv(pkcs7, 0), TAG.SEQUENCE, "ContentInfo");
  const [, wrapped] = children(pkcs7, contentInfo);
  const signedData = expectTag(children(pkcs7, expectTag(wrapped, TAG.CONTEXT_0, "ContentInfo content"))[0], TAG.SEQUENCE, "SignedData");
  const signerInfos = children(pkcs7, signedData).at(-1);
  const signerInfo = expectTag(children(pkcs7, expectTag(signerInfos, TAG.SET, "signerInfos"))[0], TAG.SEQUENCE, "SignerInfo");
  const [, sid, digestAlgorithm, ...rest] = children(pkcs7, signerInfo);
  if (!sid || !digestAlgorithm) throw new DerError("SignerInfo is incomplete");
  if (rest[0]?.tag === TAG.CONTEXT_0) throw new DerError("signed attributes are not used by module signatures");
  const signatureValue = expectTag(rest[1], TAG.OCTET_STRING, "SignerInfo signature");

  const digestOid = oidText(pkcs7, expectTag(children(pkcs7, digestAlgorithm)[0], TAG.OID, "digestAlgorithm"));
  const digest = DIGESTS[digestOid];
  if (!digest) throw new DerError(`unknown digest algorithm ${digestOid}`);
  return {
    content: module.subarray(0, sigAt),
    signer: signerIdOf(pkcs7, sid),
    digest,
    signature: value(pkcs7, signatureValue),
  };
}

function signerIdOf(buf: Uint8Array, sid: Tlv): SignerId {
  if (sid.tag === TAG.IMPLICIT_0) return { keyId: value(buf, sid) };
  const [issuer, serial] = children(buf, expectTag(sid, TAG.SEQUENCE, "IssuerAndSerialNumber"));
  return { issuer: raw(buf, expectTag(issuer, TAG.SEQUENCE, "issuer")), serial: value(buf, expectTag(serial, TAG.INTEGER, "serial")) };
}

/** The identity fields of a certificate that a PKCS#7 SignerInfo can name. */
export interface SignerCertificate {
  x509: X509Certificate;
  issuer: Buffer;
  serial: Buffer;
  keyId?: Buffer;
}

export function signerCertificate(der: Buffer): SignerCertificate {
  const cert = expectTag(readTlv(der, 0), TAG.SEQUENCE, "Certificate");
  const tbs = expectTag(children(der, cert)[0], TAG.SEQUENCE, "TBSCertificate");
  const fields = children(der, tbs);
  const offset = fields[0]?.tag === TAG.CONTEXT_0 ? 1 : 0;
  const serial = expectTag(fields[offset], TAG.INTEGER, "serialNumber");
  const issuer = expectTag(fields[offset + 2], TAG.SEQUENCE, "issuer");
  let keyId: Buffer | undefined;
  const extensions = fields.find((f) => f.tag === TAG.CONTEXT_3);
  if (extensions) {
    for (const ext of children(der, expectTag(children(der, extensions)[0], TAG.SEQUENCE, "extensions"))) {
      const [oid, ...others] = children(der, ext);
      if (oid && oidText(der, oid) === SUBJECT_KEY_IDENTIFIER) {
        const octets = others.at(-1);
        if (octets) keyId = value(der, expectTag(children(der, expectTag(octets, TAG.OCTET_STRING, "extnValue"))[0], TAG.OCTET_STRING, "keyIdentifier"));
      }
    }
  }
  return { x509: new X509Certificate(der), issuer: raw(der, issuer), serial: value(der, serial), keyId };
}

function namesCertificate(signer: SignerId, cert: SignerCertificate): boolean {
  if ("keyId" in signer) return cert.keyId !== undefined && signer.keyId.equals(cert.keyId);
  return signer.issuer.equals(cert.issuer) && signer.serial.equals(cert.serial);
}

/** Checks a module's appended signature against the kernel's module-signing certificate. */
export function verifyModule(module: Buffer, cert: SignerCertificate): ModuleVerdict {
  let parsed: ParsedSignature | undefined;
  try {
    parsed = parseModuleSignature(module);
  } catch (e) {
    return { status: "malformed", reason: (e as Error).message };
  }
  if (!parsed) return { status: "unsigned" };
  if (!namesCertificate(parsed.signer, cert)) {
    return { status: "foreign", reason: "signed by a key other than this kernel's module-signing key" };
  }
  const good = verify(parsed.digest, parsed.content, cert.x509.publicKey, parsed.signature);
  return good ? { status: "ok", digest: parsed.digest } : { status: "bad-signature", digest: parsed.digest };
}

export interface ModuleCheck {
  path: string;
  verdict: ModuleVerdict;
}

/** Verifies every .ko below `dir`; the result lists each module with its verdict. */
export async function verifyModuleTree(dir: string, certDer: Buffer): Promise<ModuleCheck[]> {
  const cert = signerCertificate(certDer);
  const modules = (await readdir(dir, { recursive: true })).filter((p) => p.endsWith(".ko")).sort();
  return Promise.all(modules.map(async (path) => ({ path, verdict: verifyModule(await readFile(join(dir, path)), cert) })));
}

export function describeVerdict(verdict: ModuleVerdict): string {
  switch (verdict.status) {
    case "ok":
      return `signature verified (${verdict.digest})`;
    case "unsigned":
      return "not signed";
    case "malformed":
      return `malformed signature: ${verdict.reason}`;
    case "foreign":
      return verdict.reason;
    case "bad-signature":
      return `signature does not match the module's content (${verdict.digest}): tampered or corrupted`;
  }
}
