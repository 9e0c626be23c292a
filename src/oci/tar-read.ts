import { Readable } from "node:stream";
import { extract } from "tar-stream";

/** An entry read from a tar archive, as it is: nothing is interpreted or skipped. */
export interface ReadEntry {
  path: string;
  type: "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo" | "other";
  mode: number;
  uid: number;
  gid: number;
  /** file content */
  data?: Buffer;
  /** symlink or hard link target */
  target?: string;
}

const TYPES: Record<string, ReadEntry["type"]> = {
  file: "file",
  "contiguous-file": "file",
  directory: "dir",
  symlink: "symlink",
  link: "hardlink",
  "character-device": "char",
  "block-device": "block",
  fifo: "fifo",
};

/** Every entry of a tar archive (uncompressed), in archive order. */
export async function readTar(archive: Buffer): Promise<ReadEntry[]> {
  const entries: ReadEntry[] = [];
  const reader = extract();
  const done = new Promise<void>((resolve, reject) => {
    reader.on("entry", (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: unknown) => chunks.push(c as Buffer));
      stream.on("end", () => {
        const type = TYPES[header.type] ?? "other";
        entries.push({
          path: header.name.replace(/^\.\//, "").replace(/\/$/, ""),
          type,
          mode: header.mode,
          uid: header.uid,
          gid: header.gid,
          ...(type === "file" ? { data: Buffer.concat(chunks) } : {}),
          ...(type === "symlink" || type === "hardlink" ? { target: header.linkname } : {}),
        });
        next();
      });
      stream.on("error", reject);
    });
    reader.on("finish", resolve);
    reader.on("error", reject);
  });
  Readable.from([archive]).pipe(reader);
  await done;
  return entries;
}
