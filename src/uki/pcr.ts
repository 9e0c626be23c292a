/**
 * Measured boot: PCR 11 as systemd-stub 252 and the boot phases extend it, predicted from a UKI, and the
 * signed policies of `.pcrsig` (the JSON systemd-measure writes). Pure: bytes in, bytes out; signing is
 * the caller's function, so the private key never reaches this module.
 */
import { createHash, type KeyObject } from "node:crypto";
import { parsePe, sectionAsLoaded } from "./pe.ts";

/** systemd's boot phases, as systemd-measure signs them by default; bronze's init measures the same words. */
export const BOOT_PHASES = ["enter-initrd", "leave-initrd", "sysinit", "ready"] as const;

/** What systemd-stub 252 measures into PCR 11, in its order (not the file's); .pcrsig itself is not. */
export const MEASURED_SECTIONS = [".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".pcrpkey"] as const;

/** TPM2_PolicyPCR's command code, and one sha256 PCR selection of PCR 11 (3 bytes of select bits) */
const TPM_CC_POLICY_PCR = Buffer.from("0000017f", "hex");
const SELECT_SHA256_PCR11 = Buffer.from("00000001000b03000800", "hex");

export interface PcrPrediction {
  /** the phases passed, joined by ':' as systemd-measure names them */
  phase: string;
  sha256: Buffer;
}

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest();
};

const extend = (pcr: Buffer, digest: Buffer): Buffer => sha256(pcr, digest);

/**
 * PCR 11 at each boot phase of this UKI. The stub measures each section as it lies in memory, its
 * VirtualSize long: a `.linux` that asks for more room than its file data is measured with the zeros.
 */
export function predictPcr11(uki: Uint8Array): PcrPrediction[] {
  const sections = parsePe(uki).sections;
  let pcr: Buffer = Buffer.alloc(32);
  for (const name of MEASURED_SECTIONS) {
    const section = sections.find((s) => s.name === name);
    if (!section) continue;
    pcr = extend(pcr, sha256(Buffer.from(`${name}\0`)));
    pcr = extend(pcr, sha256(sectionAsLoaded(uki, section)));
  }
  return BOOT_PHASES.map((word, i) => {
    pcr = extend(pcr, sha256(Buffer.from(word)));
    return { phase: BOOT_PHASES.slice(0, i + 1).join(":"), sha256: pcr };
  });
}

/** The TPM2 policy digest of PolicyPCR on PCR 11 (sha256 bank) holding this value, from an empty policy. */
export function policyPcrDigest(pcr11: Buffer): Buffer {
  return sha256(Buffer.alloc(32), TPM_CC_POLICY_PCR, SELECT_SHA256_PCR11, sha256(pcr11));
}

/** A key that signs PCR policies: RSA, as systemd-stub 252 and systemd-cryptsetup check them. */
export interface PcrSigner {
  publicKey: KeyObject;
  /** PKCS#1 v1.5 over sha256 of the digest */
  sign(digest: Buffer): Buffer;
}

/** The `.pcrsig` JSON: one signed policy per phase, as systemd-measure sign writes it (`--json=short`). */
export function pcrSignature(predictions: readonly PcrPrediction[], signer: PcrSigner): string {
  const pkfp = sha256(signer.publicKey.export({ type: "pkcs1", format: "der" })).toString("hex");
  const entries = predictions.map((p) => {
    const pol = policyPcrDigest(p.sha256);
    return { pcrs: [11], pkfp, pol: pol.toString("hex"), sig: signer.sign(pol).toString("base64") };
  });
  return JSON.stringify({ sha256: entries });
}

/** `.pcrpkey`: the public key as PEM (SubjectPublicKeyInfo), as the stub hands it to the OS. */
export function pcrPublicKeyPem(signer: PcrSigner): string {
  return String(signer.publicKey.export({ type: "spki", format: "pem" }));
}
