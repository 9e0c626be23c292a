import { crc32 } from "node:zlib";
import { guidBytes, guidText } from "../core/guid.ts";

/**
 * A GUID partition table (UEFI spec 2.10, chapter 5): protective MBR, primary header and entry
 * array, backup entry array and header. Pure: returns the bytes and where each partition goes;
 * the caller writes them into a (sparse) disk file. parseGpt reads a table back.
 */

export const SECTOR = 512;
const ENTRY_COUNT = 128;
const ENTRY_SIZE = 128;
const ENTRY_SECTORS = (ENTRY_COUNT * ENTRY_SIZE) / SECTOR;
const HEADER_SIZE = 92;
/** partitions start on 1 MiB boundaries, as partitioning tools do */
const ALIGNMENT = (1 << 20) / SECTOR;

/** Partition types of the Discoverable Partitions Specification (UAPI group). */
export const PARTITION_TYPES = {
  esp: "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
  /** SD_GPT_VAR */
  var: "4d21b016-b534-45c2-a9fb-5c16e091fd2d",
} as const;

export interface PartitionSpec {
  label: string;
  type: string;
  guid: string;
  /** bytes; omitted for the last partition: it takes the rest of the disk */
  size?: number;
}

export interface PlacedPartition extends PartitionSpec {
  offset: number;
  size: number;
  firstLba: number;
  lastLba: number;
}

export interface GptLayout {
  sizeBytes: number;
  /** LBA 0 to 33: protective MBR, header, entries */
  head: Buffer;
  /** the last 33 sectors: backup entries, backup header */
  tail: Buffer;
  tailOffset: number;
  partitions: PlacedPartition[];
}

export class GptError extends Error {}

const alignUp = (lba: number) => Math.ceil(lba / ALIGNMENT) * ALIGNMENT;

function protectiveMbr(totalSectors: number): Buffer {
  const mbr = Buffer.alloc(SECTOR);
  const entry = 446;
  mbr.set([0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff], entry);
  mbr.writeUInt32LE(1, entry + 8);
  mbr.writeUInt32LE(Math.min(totalSectors - 1, 0xffffffff), entry + 12);
  mbr.writeUInt16LE(0xaa55, 510);
  return mbr;
}

function entryArray(partitions: readonly PlacedPartition[]): Buffer {
  const entries = Buffer.alloc(ENTRY_COUNT * ENTRY_SIZE);
  partitions.forEach((p, i) => {
    const at = i * ENTRY_SIZE;
    guidBytes(p.type).copy(entries, at);
    guidBytes(p.guid).copy(entries, at + 16);
    entries.writeBigUInt64LE(BigInt(p.firstLba), at + 32);
    entries.writeBigUInt64LE(BigInt(p.lastLba), at + 40);
    const name = Buffer.from(p.label, "utf16le");
    if (name.length > 72) throw new GptError(`partition label '${p.label}' is longer than 36 characters`);
    name.copy(entries, at + 56);
  });
  return entries;
}

function header(fields: { current: number; backup: number; firstUsable: number; lastUsable: number; diskGuid: string; entriesLba: number; entriesCrc: number }): Buffer {
  const h = Buffer.alloc(SECTOR);
  h.write("EFI PART", 0, "latin1");
  h.writeUInt32LE(0x00010000, 8);
  h.writeUInt32LE(HEADER_SIZE, 12);
  h.writeBigUInt64LE(BigInt(fields.current), 24);
  h.writeBigUInt64LE(BigInt(fields.backup), 32);
  h.writeBigUInt64LE(BigInt(fields.firstUsable), 40);
  h.writeBigUInt64LE(BigInt(fields.lastUsable), 48);
  guidBytes(fields.diskGuid).copy(h, 56);
  h.writeBigUInt64LE(BigInt(fields.entriesLba), 72);
  h.writeUInt32LE(ENTRY_COUNT, 80);
  h.writeUInt32LE(ENTRY_SIZE, 84);
  h.writeUInt32LE(fields.entriesCrc, 88);
  h.writeUInt32LE(crc32(h.subarray(0, HEADER_SIZE)), 16);
  return h;
}

/** Places the partitions in order on 1 MiB boundaries and writes the table for a disk of `sizeBytes`. */
export function gptLayout(diskGuid: string, sizeBytes: number, specs: readonly PartitionSpec[]): GptLayout {
  if (sizeBytes % SECTOR !== 0) throw new GptError(`disk size ${sizeBytes} is not a multiple of ${SECTOR}`);
  const totalSectors = sizeBytes / SECTOR;
  const firstUsable = 2 + ENTRY_SECTORS;
  const lastUsable = totalSectors - 2 - ENTRY_SECTORS;
  const partitions: PlacedPartition[] = [];
  let next = alignUp(firstUsable);
  specs.forEach((spec, i) => {
    const last = i === specs.length - 1;
    if (spec.size === undefined && !last) throw new GptError(`partition '${spec.label}' has no size; only the last one takes the rest`);
    // the rest ends on a 1 MiB boundary too (what tools such as sgdisk expect)
    const sectors = spec.size === undefined ? Math.floor((lastUsable + 1 - next) / ALIGNMENT) * ALIGNMENT : Math.ceil(spec.size / SECTOR);
    const lastLba = next + sectors - 1;
    if (sectors < 1 || lastLba > lastUsable) {
      throw new GptError(`partition '${spec.label}' does not fit on a disk of ${sizeBytes} bytes; give a larger size`);
    }
    partitions.push({ ...spec, offset: next * SECTOR, size: sectors * SECTOR, firstLba: next, lastLba });
    next = alignUp(lastLba + 1);
  });
  const entries = entryArray(partitions);
  const entriesCrc = crc32(entries);
  const common = { firstUsable, lastUsable, diskGuid, entriesCrc };
  const primary = header({ ...common, current: 1, backup: totalSectors - 1, entriesLba: 2 });
  const backup = header({ ...common, current: totalSectors - 1, backup: 1, entriesLba: lastUsable + 1 });
  return {
    sizeBytes,
    head: Buffer.concat([protectiveMbr(totalSectors), primary, entries]),
    tail: Buffer.concat([entries, backup]),
    tailOffset: (lastUsable + 1) * SECTOR,
    partitions,
  };
}

export interface ReadPartition {
  label: string;
  type: string;
  guid: string;
  offset: number;
  size: number;
}

/**
 * Reads the primary GPT from the first sectors of a disk (at least LBA 0 to 33), checking the
 * header's and the entry array's CRCs.
 */
export function parseGpt(head: Uint8Array): { diskGuid: string; partitions: ReadPartition[] } {
  const disk = Buffer.from(head);
  if (disk.length < (2 + ENTRY_SECTORS) * SECTOR) throw new GptError("too short to hold a GPT");
  const h = disk.subarray(SECTOR, 2 * SECTOR);
  if (h.subarray(0, 8).toString("latin1") !== "EFI PART") throw new GptError("no GPT (no EFI PART header in LBA 1)");
  const headerSize = h.readUInt32LE(12);
  if (headerSize < HEADER_SIZE || headerSize > SECTOR) throw new GptError(`GPT header size ${headerSize} is not valid`);
  const check = Buffer.from(h.subarray(0, headerSize));
  check.writeUInt32LE(0, 16);
  if (crc32(check) !== h.readUInt32LE(16)) throw new GptError("the GPT header's CRC does not match: the table is damaged");
  const entriesLba = Number(h.readBigUInt64LE(72));
  const count = h.readUInt32LE(80);
  const entrySize = h.readUInt32LE(84);
  const entries = disk.subarray(entriesLba * SECTOR, entriesLba * SECTOR + count * entrySize);
  if (entries.length !== count * entrySize) throw new GptError("the GPT entry array lies outside what was read");
  if (crc32(entries) !== h.readUInt32LE(88)) throw new GptError("the GPT entry array's CRC does not match: the table is damaged");
  const partitions: ReadPartition[] = [];
  for (let at = 0; at < entries.length; at += entrySize) {
    const type = guidText(entries.subarray(at, at + 16));
    if (type === "00000000-0000-0000-0000-000000000000") continue;
    const first = Number(entries.readBigUInt64LE(at + 32));
    const last = Number(entries.readBigUInt64LE(at + 40));
    const label = entries.subarray(at + 56, at + 128).toString("utf16le").replace(/\0.*$/s, "");
    partitions.push({ label, type, guid: guidText(entries.subarray(at + 16, at + 32)), offset: first * SECTOR, size: (last - first + 1) * SECTOR });
  }
  return { diskGuid: guidText(h.subarray(56, 72)), partitions };
}
