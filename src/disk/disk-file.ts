import { open } from "node:fs/promises";
import { GptError, parseGpt, SECTOR } from "./gpt.ts";

/** A GPT whose entry array ends past this is not read (ours ends at LBA 34, xorriso's at 64). */
const MAX_GPT_HEAD = 1 << 20;

/** `length` bytes of a file from `offset` (fewer, zero-filled, past its end). */
async function readAt(path: string, offset: number, length: number): Promise<Buffer> {
  const handle = await open(path, "r");
  try {
    const bytes = Buffer.alloc(length);
    await handle.read(bytes, 0, length, offset);
    return bytes;
  } finally {
    await handle.close();
  }
}

/** The GPT of a disk image file (LBA 0 to the end of its entry array); GptError when it has none or a damaged one. */
export async function readGpt(path: string): Promise<ReturnType<typeof parseGpt>> {
  const header = await readAt(path, SECTOR, SECTOR);
  const entriesEnd = Number(header.readBigUInt64LE(72)) * SECTOR + header.readUInt32LE(80) * header.readUInt32LE(84);
  return parseGpt(await readAt(path, 0, Math.min(Math.max(entriesEnd, 34 * SECTOR), MAX_GPT_HEAD)));
}

/** Whether a file is a disk image with a valid GPT. */
export async function isGptDisk(path: string): Promise<boolean> {
  return readGpt(path).then(
    () => true,
    (e: unknown) => (e instanceof GptError ? false : Promise.reject(e)),
  );
}

/** ISO 9660's primary volume descriptor: "CD001" at byte 1 of sector 16 (2048-byte sectors). */
const ISO_MAGIC = { offset: 16 * 2048 + 1, bytes: Buffer.from("CD001", "latin1") };
/** qcow2: "QFI" 0xfb at the start. */
const QCOW2_MAGIC = { offset: 0, bytes: Buffer.from([0x51, 0x46, 0x49, 0xfb]) };

const hasMagic = async (path: string, magic: { offset: number; bytes: Buffer }) => (await readAt(path, magic.offset, magic.bytes.length)).equals(magic.bytes);

/** Whether a file is an ISO 9660 image (hybrid ones are GPT disks as well). */
export const isIsoImage = (path: string): Promise<boolean> => hasMagic(path, ISO_MAGIC);

/** Whether a file is a qcow2 image. */
export const isQcow2 = (path: string): Promise<boolean> => hasMagic(path, QCOW2_MAGIC);
