import { guidBytes, guidText } from "../core/guid.ts";

/**
 * Writes variables into an edk2 (OVMF) non-volatile variable store image, the file QEMU maps as
 * the second pflash: a firmware volume holding an authenticated variable store. Used to enrol
 * Secure Boot keys in a copy of OVMF_VARS without a firmware UI. Pure: returns a new image.
 */

const FV_SIGNATURE = "_FVH";
const AUTHENTICATED_VARIABLE_STORE = "aaf32c78-947b-439a-a180-2e144ec37792";
const STORE_HEADER = 28;
const VARIABLE_HEADER = 60;
const START_ID = 0x55aa;
const VAR_ADDED = 0x3f;
const VAR_DELETED_MASK = 0xfd;

export interface StoreVariable {
  name: string;
  vendor: string;
  attributes: number;
  /** EFI_TIME, for time-based authenticated variables; zeros otherwise */
  time?: Uint8Array;
  data: Uint8Array;
}

export class VariableStoreError extends Error {}

interface Layout {
  start: number;
  end: number;
}

function storeLayout(image: Buffer): Layout {
  if (image.subarray(40, 44).toString("latin1") !== FV_SIGNATURE) throw new VariableStoreError("not a firmware volume (no _FVH signature)");
  const fvHeaderLength = image.readUInt16LE(48);
  const store = fvHeaderLength;
  if (guidText(image.subarray(store, store + 16)) !== AUTHENTICATED_VARIABLE_STORE) throw new VariableStoreError("not an authenticated variable store (OVMF built without Secure Boot?)");
  const size = image.readUInt32LE(store + 16);
  if (store + size > image.length) throw new VariableStoreError("variable store runs past the end of the image");
  return { start: store + STORE_HEADER, end: store + size };
}

const align4 = (n: number) => (n + 3) & ~3;

/** Every variable header in the store, with its name and vendor; returns where free space begins. */
function walk(image: Buffer, layout: Layout): { headers: { offset: number; name: string; vendor: string; state: number }[]; free: number } {
  const headers = [];
  let offset = layout.start;
  while (offset + VARIABLE_HEADER <= layout.end && image.readUInt16LE(offset) === START_ID) {
    const nameSize = image.readUInt32LE(offset + 36);
    const dataSize = image.readUInt32LE(offset + 40);
    const name = image.subarray(offset + VARIABLE_HEADER, offset + VARIABLE_HEADER + nameSize).toString("utf16le").replace(/\0$/, "");
    headers.push({ offset, name, vendor: guidText(image.subarray(offset + 44, offset + 60)), state: image.readUInt8(offset + 2) });
    offset = align4(offset + VARIABLE_HEADER + nameSize + dataSize);
  }
  return { headers, free: offset };
}

function encodeVariable(v: StoreVariable): Buffer {
  const name = Buffer.from(`${v.name}\0`, "utf16le");
  const header = Buffer.alloc(VARIABLE_HEADER);
  header.writeUInt16LE(START_ID, 0);
  header.writeUInt8(VAR_ADDED, 2);
  header.writeUInt32LE(v.attributes, 4);
  // MonotonicCount (8) stays 0; TimeStamp (16) at 16; PubKeyIndex (4) 0
  if (v.time) Buffer.from(v.time).copy(header, 16);
  header.writeUInt32LE(name.length, 36);
  header.writeUInt32LE(v.data.length, 40);
  guidBytes(v.vendor).copy(header, 44);
  const body = Buffer.concat([header, name, v.data]);
  return Buffer.concat([body, Buffer.alloc(align4(body.length) - body.length, 0xff)]);
}

/**
 * The store with no variable in it, as the firmware formats a new one: a store to enrol keys into where the
 * firmware ships none formatted (AAVMF_VARS.fd is blank until the first boot; its snakeoil store is not).
 */
export function withoutVariables(template: Uint8Array): Buffer {
  const image = Buffer.from(template);
  const layout = storeLayout(image);
  image.fill(0xff, layout.start, layout.end);
  return image;
}

/** Sets variables: earlier copies with the same name and vendor are marked deleted, the new ones appended. */
export function setVariables(template: Uint8Array, variables: readonly StoreVariable[]): Buffer {
  const image = Buffer.from(template);
  const layout = storeLayout(image);
  const { headers, free } = walk(image, layout);
  for (const v of variables) {
    for (const h of headers) {
      if (h.name === v.name && h.vendor === v.vendor && h.state === VAR_ADDED) image.writeUInt8(h.state & VAR_DELETED_MASK, h.offset + 2);
    }
  }
  const added = Buffer.concat(variables.map(encodeVariable));
  if (free + added.length > layout.end) throw new VariableStoreError(`no room for ${added.length} bytes of variables in the store`);
  added.copy(image, free);
  return image;
}

/** The live (added, not deleted) variables of a store, for inspection. */
export function listVariables(template: Uint8Array): { name: string; vendor: string }[] {
  const image = Buffer.from(template);
  return walk(image, storeLayout(image)).headers.filter((h) => h.state === VAR_ADDED).map(({ name, vendor }) => ({ name, vendor }));
}
