import { open } from "node:fs/promises";
import { GptError, parseGpt, SECTOR } from "./gpt.ts";

/** A GPT whose entry array ends past this is not read (ours ends at LBA 34, xorriso's at 64). */
const MAX_GPT_HEAD = 1 << 20;

/** The GPT of a disk image file (LBA 0 to the end of its entry array); GptError when it has none or a damaged one. */
export async function readGpt(path: string): Promise<ReturnType<typeof parseGpt>> {
  const handle = await open(path, "r");
  try {
    const header = Buffer.alloc(2 * SECTOR);
    await handle.read(header, 0, header.length, 0);
    const entriesEnd = Number(header.readBigUInt64LE(SECTOR + 72)) * SECTOR + header.readUInt32LE(SECTOR + 80) * header.readUInt32LE(SECTOR + 84);
    const head = Buffer.alloc(Math.min(Math.max(entriesEnd, 34 * SECTOR), MAX_GPT_HEAD));
    await handle.read(head, 0, head.length, 0);
    return parseGpt(head);
  } finally {
    await handle.close();
  }
}

/** Whether a file is a disk image with a valid GPT. */
export async function isGptDisk(path: string): Promise<boolean> {
  return readGpt(path).then(
    () => true,
    (e: unknown) => (e instanceof GptError ? false : Promise.reject(e)),
  );
}

/** ISO 9660's primary volume descriptor: "CD001" at byte 1 of sector 16 (2048-byte sectors). */
const ISO_MAGIC_OFFSET = 16 * 2048 + 1;

/** Whether a file is an ISO 9660 image (hybrid ones are GPT disks as well). */
export async function isIsoImage(path: string): Promise<boolean> {
  const handle = await open(path, "r");
  try {
    const magic = Buffer.alloc(5);
    const { bytesRead } = await handle.read(magic, 0, magic.length, ISO_MAGIC_OFFSET);
    return bytesRead === magic.length && magic.toString("latin1") === "CD001";
  } finally {
    await handle.close();
  }
}

/** Whether a file is a qcow2 image ("QFI" 0xfb at its start). */
export async function isQcow2(path: string): Promise<boolean> {
  const handle = await open(path, "r");
  try {
    const magic = Buffer.alloc(4);
    const { bytesRead } = await handle.read(magic, 0, magic.length, 0);
    return bytesRead === magic.length && magic.equals(Buffer.from([0x51, 0x46, 0x49, 0xfb]));
  } finally {
    await handle.close();
  }
}
