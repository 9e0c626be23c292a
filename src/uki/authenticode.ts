import { createHash, sign, type KeyObject } from "node:crypto";
import { children, expectTag, explicit, integer, nullValue, octetString, oid, raw, readTlv, sequence, setOf, TAG, tlv } from "../core/der.ts";
import { PeFormatError, signingLayout } from "./pe.ts";

/**
 * Authenticode signing of PE images (UKIs, systemd-boot) for Secure Boot. Pure: the same image,
 * key and certificate give the same bytes (RSA PKCS#1 v1.5 is deterministic and no signing time
 * is recorded), so signed UKIs stay reproducible.
 */

const OID = {
  signedData: "1.2.840.113549.1.7.2",
  sha256: "2.16.840.1.101.3.4.2.1",
  rsaEncryption: "1.2.840.113549.1.1.1",
  contentType: "1.2.840.113549.1.9.3",
  messageDigest: "1.2.840.113549.1.9.4",
  spcIndirectData: "1.3.6.1.4.1.311.2.1.4",
  spcPeImageData: "1.3.6.1.4.1.311.2.1.15",
  spcSpOpusInfo: "1.3.6.1.4.1.311.2.1.12",
} as const;

const WIN_CERT_REVISION_2_0 = 0x0200;
const WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002;
const WIN_CERTIFICATE_HEADER = 8;

const align8 = (n: number) => Math.ceil(n / 8) * 8;

/**
 * The Authenticode SHA-256 of an image: the headers without CheckSum and the Certificate Table
 * entry, then each section's raw data in file order, then the rest of the file but the
 * Certificate Table, counted from the headers' size plus the sections' sizes.
 */
export function authenticodeDigest(image: Uint8Array): Buffer {
  const layout = signingLayout(image);
  const hash = createHash("sha256");
  hash.update(image.subarray(0, layout.checksumOffset));
  hash.update(image.subarray(layout.checksumOffset + 4, layout.certificateEntryOffset));
  hash.update(image.subarray(layout.certificateEntryOffset + 8, layout.sizeOfHeaders));
  // SUM_OF_BYTES_HASHED, as the specification counts it and UEFI firmware (edk2) and sbverify hash: the
  // data after the sections starts there, which is where the last section ends only when none leaves a gap
  let hashed = layout.sizeOfHeaders;
  const sections = layout.sections.filter((s) => s.sizeOfRawData > 0).sort((a, b) => a.pointerToRawData - b.pointerToRawData);
  for (const s of sections) {
    if (s.pointerToRawData + s.sizeOfRawData > image.length) throw new PeFormatError(`section ${s.name} runs past the end of the file`);
    hash.update(image.subarray(s.pointerToRawData, s.pointerToRawData + s.sizeOfRawData));
    hashed += s.sizeOfRawData;
  }
  const end = image.length - (layout.certificateTable?.size ?? 0);
  if (end < hashed) throw new PeFormatError("the sections and the Certificate Table overlap: the image is not a valid PE to sign or verify");
  hash.update(image.subarray(hashed, end));
  return hash.digest();
}

/** Issuer Name and serial number (DER) of an X.509 certificate. */
export function issuerAndSerial(certificate: Buffer): Buffer {
  const cert = readTlv(certificate, 0);
  const tbs = expectTag(children(certificate, cert)[0], TAG.SEQUENCE, "certificate");
  const fields = children(certificate, tbs);
  const offset = fields[0]?.tag === TAG.CONTEXT_0 ? 1 : 0; // [0] version
  const serial = expectTag(fields[offset], TAG.INTEGER, "certificate serial number");
  const issuer = expectTag(fields[offset + 2], TAG.SEQUENCE, "certificate issuer");
  return sequence(raw(certificate, issuer), raw(certificate, serial));
}

/** "<<<Obsolete>>>" as a BMPString, the file link Authenticode tools write into SpcPeImageData. */
function obsoleteLink(): Buffer {
  const text = Buffer.from("<<<Obsolete>>>", "utf16le").swap16();
  return explicit(0, tlv(0xa2, tlv(0x80, text)));
}

/** The PKCS#7 SignedData of an Authenticode signature over `digest`. */
export function authenticodeSignature(digest: Buffer, key: KeyObject, certificate: Buffer): Buffer {
  const algorithm = sequence(oid(OID.sha256), nullValue());
  const indirectData = sequence(
    sequence(oid(OID.spcPeImageData), sequence(tlv(0x03, Buffer.from([0])), obsoleteLink())),
    sequence(algorithm, octetString(digest)),
  );
  // PKCS#7 hashes the content's value, without its own tag and length
  const content = readTlv(indirectData, 0);
  const contentDigest = createHash("sha256").update(indirectData.subarray(content.start, content.end)).digest();
  const attributes = [
    sequence(oid(OID.contentType), setOf(oid(OID.spcIndirectData))),
    sequence(oid(OID.spcSpOpusInfo), setOf(sequence())),
    sequence(oid(OID.messageDigest), setOf(octetString(contentDigest))),
  ];
  // the signature covers the attributes encoded as a SET; they are stored with the [0] IMPLICIT tag
  const signedAttributes = setOf(...attributes);
  const signature = sign("sha256", signedAttributes, key);
  const signerInfo = sequence(
    integer(1),
    issuerAndSerial(certificate),
    algorithm,
    Buffer.concat([Buffer.from([0xa0]), signedAttributes.subarray(1)]),
    sequence(oid(OID.rsaEncryption), nullValue()),
    octetString(signature),
  );
  const signedData = sequence(
    integer(1),
    setOf(algorithm),
    sequence(oid(OID.spcIndirectData), explicit(0, indirectData)),
    explicit(0, certificate),
    setOf(signerInfo),
  );
  return sequence(oid(OID.signedData), explicit(0, signedData));
}

/**
 * Signs a PE image: pads it to 8 bytes, appends a WIN_CERTIFICATE holding the Authenticode
 * signature and points the Certificate Table entry at it. Refuses an image that is signed already.
 */
export function signPe(image: Uint8Array, key: KeyObject, certificate: Buffer): Buffer {
  if (key.asymmetricKeyType !== "rsa") throw new PeFormatError(`Secure Boot signing needs an RSA key, not ${key.asymmetricKeyType}`);
  if (signingLayout(image).certificateTable) throw new PeFormatError("the image is signed already; sign the unsigned image");
  const padded = Buffer.alloc(align8(image.length));
  padded.set(image);
  const layout = signingLayout(padded);
  const pkcs7 = authenticodeSignature(authenticodeDigest(padded), key, certificate);
  const tableSize = align8(WIN_CERTIFICATE_HEADER + pkcs7.length);
  const table = Buffer.alloc(tableSize);
  table.writeUInt32LE(tableSize, 0);
  table.writeUInt16LE(WIN_CERT_REVISION_2_0, 4);
  table.writeUInt16LE(WIN_CERT_TYPE_PKCS_SIGNED_DATA, 6);
  pkcs7.copy(table, WIN_CERTIFICATE_HEADER);
  const signed = Buffer.concat([padded, table]);
  signed.writeUInt32LE(padded.length, layout.certificateEntryOffset);
  signed.writeUInt32LE(tableSize, layout.certificateEntryOffset + 4);
  return signed;
}
