/**
 * Where each regular file of a tar archive sits, found from its headers alone: a layout tar is read
 * a file at a time (index.json, then the blobs a command needs), never whole into memory.
 */
import { open } from "node:fs/promises";

const BLOCK = 512;

/** A regular file's content: `size` bytes from `offset` of the archive. */
export interface TarSpan {
  offset: number;
  size: number;
}

/** One header block, as far as finding files needs it. */
export interface TarHeader {
  name: string;
  type: string;
  size: number;
}

const text = (block: Buffer, start: number, length: number) => {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? length : end).toString("utf8");
};

/** A numeric field: octal text, or base-256 (high bit set) for values octal cannot hold. */
function numberField(block: Buffer, start: number, length: number): number {
  const field = block.subarray(start, start + length);
  if ((field[0] ?? 0) & 0x80) {
    let value = (field[0] ?? 0) & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    return value;
  }
  const digits = text(block, start, length).trim();
  if (!/^[0-7]*$/.test(digits)) throw new Error(`bad numeric field '${digits}'`);
  return digits ? parseInt(digits, 8) : 0;
}

/** The header in `block`, undefined for an all-zero block (the archive's end); a bad checksum throws. */
export function parseTarHeader(block: Buffer): TarHeader | undefined {
  if (block.length !== BLOCK) throw new Error("truncated header");
  if (block.every((byte) => byte === 0)) return undefined;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
  if (numberField(block, 148, 8) !== sum) throw new Error("header checksum mismatch");
  const name = text(block, 0, 100);
  const ustar = block.toString("ascii", 257, 262) === "ustar";
  const prefix = ustar ? text(block, 345, 155) : "";
  return { name: prefix ? `${prefix}/${name}` : name, type: String.fromCharCode(block[156] ?? 0), size: numberField(block, 124, 12) };
}

/** The `path` record of a PAX extended header ("LEN path=VALUE\n" records, LEN counted in bytes). */
function paxPath(data: Buffer): string | undefined {
  let path: string | undefined;
  for (let at = 0; at < data.length; ) {
    const space = data.indexOf(0x20, at);
    const length = Number(data.toString("ascii", at, space));
    if (space < 0 || !Number.isInteger(length) || length <= space - at) throw new Error("bad PAX record");
    const record = data.toString("utf8", space + 1, at + length - 1);
    if (record.startsWith("path=")) path = record.slice(5);
    at += length;
  }
  return path;
}

const normal = (path: string) => path.replace(/^\.\//, "").replace(/\/$/, "");

/** The regular files of the tar at `path` by their path (a later entry of the same path wins, as tar does). */
export async function indexTar(path: string): Promise<Map<string, TarSpan>> {
  const handle = await open(path, "r");
  try {
    const { size: archiveSize } = await handle.stat();
    const files = new Map<string, TarSpan>();
    const read = async (offset: number, length: number) => {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      if (bytesRead !== length) throw new Error(`truncated at byte ${String(offset + bytesRead)}`);
      return buffer;
    };
    let longName: string | undefined;
    for (let offset = 0; offset + BLOCK <= archiveSize; ) {
      const header = parseTarHeader(await read(offset, BLOCK));
      if (!header) break;
      const data = offset + BLOCK;
      offset = data + Math.ceil(header.size / BLOCK) * BLOCK;
      if (offset > archiveSize) throw new Error(`'${header.name}' runs past the archive's end`);
      if (header.type === "x" || header.type === "L") {
        const extended = await read(data, header.size);
        longName = header.type === "L" ? text(extended, 0, extended.length) : paxPath(extended);
        continue;
      }
      if (header.type === "g") continue;
      const name = normal(longName ?? header.name);
      longName = undefined;
      if (header.type === "0" || header.type === "\0" || header.type === "7") files.set(name, { offset: data, size: header.size });
    }
    return files;
  } finally {
    await handle.close();
  }
}

/** `span`'s bytes from the tar at `path`. */
export async function readSpan(path: string, span: TarSpan): Promise<Buffer> {
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.alloc(span.size);
    const { bytesRead } = await handle.read(buffer, 0, span.size, span.offset);
    if (bytesRead !== span.size) throw new Error(`${path}: truncated at byte ${String(span.offset + bytesRead)}`);
    return buffer;
  } finally {
    await handle.close();
  }
}
