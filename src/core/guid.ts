import { createHash } from "node:crypto";

/** GUIDs as UEFI stores them (GPT, variables, signature lists). Pure. */

/** An EFI_GUID in memory: the first three fields little-endian, the last eight bytes as written. */
export function guidBytes(text: string): Buffer {
  const match = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i.exec(text);
  if (!match) throw new Error(`not a GUID: ${text}`);
  const [, a, b, c, d, e] = match as unknown as [string, string, string, string, string, string];
  const out = Buffer.alloc(16);
  out.writeUInt32LE(parseInt(a, 16), 0);
  out.writeUInt16LE(parseInt(b, 16), 4);
  out.writeUInt16LE(parseInt(c, 16), 6);
  Buffer.from(d + e, "hex").copy(out, 8);
  return out;
}

export function guidText(bytes: Uint8Array): string {
  const b = Buffer.from(bytes);
  const hex = (n: number, width: number) => n.toString(16).padStart(width, "0");
  const tail = b.subarray(8, 16).toString("hex");
  return `${hex(b.readUInt32LE(0), 8)}-${hex(b.readUInt16LE(4), 4)}-${hex(b.readUInt16LE(6), 4)}-${tail.slice(0, 4)}-${tail.slice(4)}`;
}

/** A name-based GUID (version 5 layout) derived from `seed`: the same seed, the same GUID. */
export function derivedGuid(seed: Uint8Array): string {
  const h = createHash("sha256").update(seed).digest().subarray(0, 16);
  h[6] = ((h[6] as number) & 0x0f) | 0x50;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const t = h.toString("hex");
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-${t.slice(12, 16)}-${t.slice(16, 20)}-${t.slice(20)}`;
}
