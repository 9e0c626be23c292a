/** A minimal DER (ASN.1) reader: just enough for PKCS#7 signatures and X.509 certificates. */

export interface Tlv {
  tag: number;
  /** offset of the value */
  start: number;
  /** offset just past the value */
  end: number;
  /** offset of the tag byte */
  offset: number;
}

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

export const TAG = {
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  OID: 0x06,
  SEQUENCE: 0x30,
  SET: 0x31,
  CONTEXT_0: 0xa0,
  CONTEXT_1: 0xa1,
  CONTEXT_3: 0xa3,
  IMPLICIT_0: 0x80,
} as const;

export function readTlv(buf: Uint8Array, offset: number, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw new DerError(`truncated DER at offset ${offset}`);
  const tag = buf[offset] as number;
  let lengthByte = buf[offset + 1] as number;
  let start = offset + 2;
  let length = lengthByte;
  if (lengthByte & 0x80) {
    lengthByte &= 0x7f;
    if (lengthByte === 0 || lengthByte > 4 || start + lengthByte > limit) throw new DerError(`bad DER length at offset ${offset}`);
    length = 0;
    for (let i = 0; i < lengthByte; i++) length = length * 256 + (buf[start + i] as number);
    start += lengthByte;
  }
  const end = start + length;
  if (end > limit) throw new DerError(`DER value at offset ${offset} runs past its container`);
  return { tag, start, end, offset };
}

/** The elements inside a constructed value. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const child = readTlv(buf, at, parent.end);
    out.push(child);
    at = child.end;
  }
  return out;
}

export function expectTag(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlv || tlv.tag !== tag) {
    throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found ${tlv ? `0x${tlv.tag.toString(16)}` : "nothing"}`);
  }
  return tlv;
}

export function oidText(buf: Uint8Array, tlv: Tlv): string {
  const bytes = buf.subarray(tlv.start, tlv.end);
  const first = bytes[0] ?? 0;
  const parts = [Math.floor(first / 40), first % 40];
  let value = 0;
  for (const b of bytes.subarray(1)) {
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join(".");
}

/** The whole encoding (tag, length and value) of an element. */
export function raw(buf: Uint8Array, tlv: Tlv): Buffer {
  return Buffer.from(buf.subarray(tlv.offset, tlv.end));
}

export function value(buf: Uint8Array, tlv: Tlv): Buffer {
  return Buffer.from(buf.subarray(tlv.start, tlv.end));
}
