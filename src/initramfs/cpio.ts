/** One entry of a newc cpio archive. */
export type CpioEntry =
  | { type: "file"; path: string; mode: number; data: Uint8Array }
  | { type: "dir"; path: string; mode: number }
  | { type: "symlink"; path: string; target: string }
  | { type: "char"; path: string; mode: number; major: number; minor: number };

const MAGIC = "070701";
const TRAILER = "TRAILER!!!";
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const hex8 = (n: number): string => n.toString(16).padStart(8, "0");
const pad4 = (n: number): number => (4 - (n % 4)) % 4;

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function header(fields: {
  ino: number;
  mode: number;
  nlink: number;
  mtime: number;
  size: number;
  rdevMajor: number;
  rdevMinor: number;
  nameSize: number;
}): string {
  return (
    MAGIC +
    [
      fields.ino,
      fields.mode,
      0, // uid
      0, // gid
      fields.nlink,
      fields.mtime,
      fields.size,
      0, // devmajor
      0, // devminor
      fields.rdevMajor,
      fields.rdevMinor,
      fields.nameSize,
      0, // check
    ]
      .map(hex8)
      .join("")
  );
}

function record(name: string, fields: Omit<Parameters<typeof header>[0], "nameSize">, data: Uint8Array): Buffer[] {
  const nameBytes = Buffer.from(name + "\0");
  const head = Buffer.from(header({ ...fields, nameSize: nameBytes.length }), "ascii");
  const headLength = head.length + nameBytes.length;
  return [head, nameBytes, Buffer.alloc(pad4(headLength)), Buffer.from(data), Buffer.alloc(pad4(data.length))];
}

/**
 * A reproducible newc ("070701") cpio archive: entries sorted bytewise by path,
 * owner 0:0, every mtime = `mtime`, inodes numbered from 1 in archive order.
 */
export function writeCpio(entries: readonly CpioEntry[], mtime: number): Buffer {
  const seen = new Set<string>();
  for (const e of entries) {
    if (!e.path || e.path.startsWith("/") || e.path.split("/").includes("..")) {
      throw new Error(`cpio entry path must be relative and inside the archive: '${e.path}'`);
    }
    if (seen.has(e.path)) throw new Error(`cpio entry '${e.path}' appears twice`);
    seen.add(e.path);
  }
  const sorted = [...entries].sort((a, b) => compareBytes(a.path, b.path));
  const parts: Buffer[] = [];
  sorted.forEach((e, i) => {
    const base = { ino: i + 1, mtime, rdevMajor: 0, rdevMinor: 0 };
    switch (e.type) {
      case "file":
        parts.push(...record(e.path, { ...base, mode: S_IFREG | e.mode, nlink: 1, size: e.data.length }, e.data));
        break;
      case "dir":
        parts.push(...record(e.path, { ...base, mode: S_IFDIR | e.mode, nlink: 2, size: 0 }, new Uint8Array()));
        break;
      case "symlink": {
        const target = Buffer.from(e.target);
        parts.push(...record(e.path, { ...base, mode: S_IFLNK | 0o777, nlink: 1, size: target.length }, target));
        break;
      }
      case "char":
        parts.push(
          ...record(
            e.path,
            { ...base, mode: S_IFCHR | e.mode, nlink: 1, size: 0, rdevMajor: e.major, rdevMinor: e.minor },
            new Uint8Array(),
          ),
        );
        break;
    }
  });
  parts.push(...record(TRAILER, { ino: 0, mode: 0, nlink: 1, mtime: 0, size: 0, rdevMajor: 0, rdevMinor: 0 }, new Uint8Array()));
  return Buffer.concat(parts);
}
