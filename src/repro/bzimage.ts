import { gunzipSync, zstdDecompressSync } from "node:zlib";

/** An x86 bzImage split along the boot protocol (Documentation/arch/x86/boot.rst). */
export interface BzImage {
  /** real-mode setup: boot sector and setup code, (setup_sects + 1) * 512 bytes */
  setupLength: number;
  /** where the compressed kernel starts in the file */
  payloadOffset: number;
  payloadLength: number;
  compression: "zstd" | "gzip";
}

const HEADER_MAGIC_AT = 0x202;
const SETUP_SECTS_AT = 0x1f1;
const PAYLOAD_OFFSET_AT = 0x248;
const PAYLOAD_LENGTH_AT = 0x24c;
const VERSION_AT = 0x206;
/** payload_offset and payload_length exist from boot protocol 2.08 on */
const MIN_PROTOCOL = 0x0208;
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

/** Whether the image is an x86 bzImage (its setup header's magic). */
export const isBzImage = (image: Buffer): boolean => image.length >= 0x270 && image.toString("latin1", HEADER_MAGIC_AT, HEADER_MAGIC_AT + 4) === "HdrS";

export function parseBzImage(image: Buffer): BzImage {
  if (!isBzImage(image)) {
    throw new Error("not an x86 bzImage (no HdrS setup header)");
  }
  const protocol = image.readUInt16LE(VERSION_AT);
  if (protocol < MIN_PROTOCOL) throw new Error(`boot protocol ${protocol.toString(16)} is older than 2.08: no payload fields`);
  const setupSects = image[SETUP_SECTS_AT] || 4;
  const setupLength = (setupSects + 1) * 512;
  const payloadOffset = setupLength + image.readUInt32LE(PAYLOAD_OFFSET_AT);
  const payloadLength = image.readUInt32LE(PAYLOAD_LENGTH_AT);
  if (payloadOffset + payloadLength > image.length) throw new Error("the payload runs past the end of the image");
  const head = image.subarray(payloadOffset, payloadOffset + 4);
  const compression = head.equals(ZSTD_MAGIC) ? "zstd" : head.subarray(0, 2).equals(GZIP_MAGIC) ? "gzip" : undefined;
  if (!compression) throw new Error(`payload compression not supported (magic ${head.toString("hex")}); bronze builds zstd kernels`);
  return { setupLength, payloadOffset, payloadLength, compression };
}

/**
 * The uncompressed kernel inside a bzImage (vmlinux without symbols, then its relocations).
 * Both streams end with the uncompressed size (4 bytes, little endian): gzip's own trailer, and what the
 * kernel's build appends to a zstd frame.
 */
export function kernelPayload(image: Buffer, layout: BzImage = parseBzImage(image)): Buffer {
  const stream = image.subarray(layout.payloadOffset, layout.payloadOffset + layout.payloadLength);
  const size = stream.readUInt32LE(stream.length - 4);
  const data = layout.compression === "zstd" ? zstdDecompressSync(stream.subarray(0, -4)) : gunzipSync(stream);
  if (data.length !== size) throw new Error(`the payload decompresses to ${data.length} bytes, the image says ${size}`);
  return data;
}

const SHT_NOTE = 7;
const NT_GNU_BUILD_ID = 3;

/** A GNU build ID note's header (namesz 4, descsz 20, NT_GNU_BUILD_ID, "GNU\0"), as a raw image (objcopy -O binary) keeps it. */
const BUILD_ID_NOTE = Buffer.from("040000001400000003000000474e5500", "hex");

/**
 * Where the GNU build IDs of a raw kernel image (arm64's Image: no ELF headers) lie: every note of one,
 * the kernel's own and the vDSO's it embeds (which does not follow the key, but is masked alike).
 */
export function buildIdNotes(image: Buffer): { offset: number; length: number }[] {
  const found: { offset: number; length: number }[] = [];
  for (let at = image.indexOf(BUILD_ID_NOTE); at >= 0; at = image.indexOf(BUILD_ID_NOTE, at + 1)) found.push({ offset: at + BUILD_ID_NOTE.length, length: 20 });
  return found;
}

/** Where an ELF64 (little endian) file's GNU build ID lies: offset and length of the ID, if it has one. */
export function gnuBuildId(elf: Buffer): { offset: number; length: number } | undefined {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return undefined;
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  for (let i = 0; i < shnum; i++) {
    const header = shoff + i * shentsize;
    if (header + 64 > elf.length || elf.readUInt32LE(header + 4) !== SHT_NOTE) continue;
    const start = Number(elf.readBigUInt64LE(header + 0x18));
    const end = start + Number(elf.readBigUInt64LE(header + 0x20));
    for (let at = start; at + 12 <= end; ) {
      const nameSize = elf.readUInt32LE(at);
      const descSize = elf.readUInt32LE(at + 4);
      const type = elf.readUInt32LE(at + 8);
      const name = at + 12;
      const desc = name + Math.ceil(nameSize / 4) * 4;
      if (type === NT_GNU_BUILD_ID && elf.toString("latin1", name, name + nameSize) === "GNU\0") return { offset: desc, length: descSize };
      at = desc + Math.ceil(descSize / 4) * 4;
    }
  }
  return undefined;
}
