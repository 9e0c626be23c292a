import { sign, type KeyObject } from "node:crypto";
import { explicit, integer, nullValue, oid, octetString, sequence, setOf } from "../core/der.ts";
import { guidBytes, guidText } from "../core/guid.ts";
import { issuerAndSerial } from "../uki/authenticode.ts";

/**
 * UEFI Secure Boot variables (UEFI spec 2.10, 8.2 and 32.4): EFI signature lists and
 * time-based authenticated variable updates (.auth), as efitools' cert-to-efi-sig-list and
 * sign-efi-sig-list write them. Pure functions of their inputs.
 */

export const EFI_GLOBAL_VARIABLE = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
export const EFI_IMAGE_SECURITY_DATABASE = "d719b2cb-3d3a-4596-a3bc-dad00e67656f";
const EFI_CERT_X509 = "a5c059a1-94e4-4aa7-87b5-ab155c2bf072";
const EFI_CERT_TYPE_PKCS7 = "4aafd29d-68df-49ee-8aa9-347d375665a7";

/** NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS | TIME_BASED_AUTHENTICATED_WRITE_ACCESS */
export const SECURE_BOOT_VARIABLE_ATTRIBUTES = 0x27;
const WIN_CERT_REVISION_2_0 = 0x0200;
const WIN_CERT_TYPE_EFI_GUID = 0x0ef1;

export type SecureBootVariable = "PK" | "KEK" | "db";

/** The namespace GUID each Secure Boot variable lives in. */
export function vendorOf(name: SecureBootVariable): string {
  return name === "db" ? EFI_IMAGE_SECURITY_DATABASE : EFI_GLOBAL_VARIABLE;
}

/** EFI_SIGNATURE_LIST of one X.509 certificate (DER) owned by `owner`. */
export function x509SignatureList(owner: string, certificateDer: Uint8Array): Buffer {
  const header = Buffer.alloc(28);
  const signatureSize = 16 + certificateDer.length;
  guidBytes(EFI_CERT_X509).copy(header, 0);
  header.writeUInt32LE(28 + signatureSize, 16);
  header.writeUInt32LE(0, 20); // SignatureHeaderSize: none for X.509
  header.writeUInt32LE(signatureSize, 24);
  return Buffer.concat([header, guidBytes(owner), certificateDer]);
}

/** EFI_TIME as authenticated variables want it: UTC, whole seconds, every pad and zone field 0. */
export function efiTime(date: Date): Buffer {
  const t = Buffer.alloc(16);
  t.writeUInt16LE(date.getUTCFullYear(), 0);
  t.writeUInt8(date.getUTCMonth() + 1, 2);
  t.writeUInt8(date.getUTCDate(), 3);
  t.writeUInt8(date.getUTCHours(), 4);
  t.writeUInt8(date.getUTCMinutes(), 5);
  t.writeUInt8(date.getUTCSeconds(), 6);
  return t;
}

/** PKCS#7 SignedData (without its ContentInfo wrapper, as UEFI stores it) of a detached signature with no attributes. */
function detachedSignedData(data: Uint8Array, key: KeyObject, certificate: Buffer): Buffer {
  const algorithm = sequence(oid("2.16.840.1.101.3.4.2.1"), nullValue());
  const signerInfo = sequence(
    integer(1),
    issuerAndSerial(certificate),
    algorithm,
    sequence(oid("1.2.840.113549.1.1.1"), nullValue()),
    octetString(sign("sha256", data, key)),
  );
  return sequence(integer(1), setOf(algorithm), sequence(oid("1.2.840.113549.1.7.1")), explicit(0, certificate), setOf(signerInfo));
}

export interface VariableUpdate {
  name: SecureBootVariable;
  /** the new value: an EFI signature list, or empty to delete (e.g. PK, back to setup mode) */
  data: Uint8Array;
  time: Date;
}

/** What the firmware verifies: name (UTF-16, no terminator), vendor GUID, attributes, time stamp, data. */
export function signedBundle(update: VariableUpdate): Buffer {
  const attributes = Buffer.alloc(4);
  attributes.writeUInt32LE(SECURE_BOOT_VARIABLE_ATTRIBUTES);
  return Buffer.concat([Buffer.from(update.name, "utf16le"), guidBytes(vendorOf(update.name)), attributes, efiTime(update.time), update.data]);
}

/**
 * A time-based authenticated update (EFI_VARIABLE_AUTHENTICATION_2 followed by the data),
 * signed by `key` (PK signs PK and KEK, KEK signs db). Same inputs, same bytes.
 */
export function authenticatedUpdate(update: VariableUpdate, key: KeyObject, certificate: Buffer): Buffer {
  const signedData = detachedSignedData(signedBundle(update), key, certificate);
  const header = Buffer.alloc(24);
  header.writeUInt32LE(header.length + signedData.length, 0);
  header.writeUInt16LE(WIN_CERT_REVISION_2_0, 4);
  header.writeUInt16LE(WIN_CERT_TYPE_EFI_GUID, 6);
  guidBytes(EFI_CERT_TYPE_PKCS7).copy(header, 8);
  return Buffer.concat([efiTime(update.time), header, signedData, update.data]);
}

export interface ParsedUpdate {
  time: Buffer;
  signedData: Buffer;
  data: Buffer;
}

/** Splits a .auth file into its time stamp, PKCS#7 and variable data. */
export function parseAuthenticatedUpdate(file: Uint8Array): ParsedUpdate {
  const b = Buffer.from(file);
  if (b.length < 40) throw new Error("too short for EFI_VARIABLE_AUTHENTICATION_2");
  const length = b.readUInt32LE(16);
  if (b.readUInt16LE(20) !== WIN_CERT_REVISION_2_0 || b.readUInt16LE(22) !== WIN_CERT_TYPE_EFI_GUID || guidText(b.subarray(24, 40)) !== EFI_CERT_TYPE_PKCS7 || 16 + length > b.length) {
    throw new Error("not an EFI_VARIABLE_AUTHENTICATION_2 with a PKCS#7 certificate");
  }
  return { time: b.subarray(0, 16), signedData: b.subarray(40, 16 + length), data: b.subarray(16 + length) };
}
