import { chmod, mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BronzeError } from "../core/errors.ts";
import type { ReadEntry } from "./tar-read.ts";

/**
 * Writes entries under `into` with their exact modes: relative paths only, nothing through a
 * symlink, only files, directories and symlinks. `what` names the source in errors.
 */
export async function writeEntries(entries: readonly ReadEntry[], into: string, what: string): Promise<void> {
  const links = new Set<string>();
  await mkdir(into, { recursive: true });
  for (const entry of entries) {
    const parts = entry.path.split("/");
    if (!entry.path || entry.path.startsWith("/") || parts.some((p) => p === ".." || p === "." || p === "")) throw new BronzeError(`${what}: refusing path '${entry.path}'`);
    if (parts.some((_, i) => links.has(parts.slice(0, i).join("/")))) throw new BronzeError(`${what}: '${entry.path}' lies under a symlink`);
    const path = join(into, entry.path);
    if (entry.type === "dir") {
      await mkdir(path, { recursive: true });
      await chmod(path, entry.mode);
    } else if (entry.type === "file") {
      await mkdir(join(path, ".."), { recursive: true });
      await writeFile(path, entry.data ?? Buffer.alloc(0), { flag: "wx" });
      await chmod(path, entry.mode);
    } else if (entry.type === "symlink") {
      await mkdir(join(path, ".."), { recursive: true });
      await symlink(entry.target ?? "", path);
      links.add(entry.path);
    } else throw new BronzeError(`${what}: '${entry.path}' is a ${entry.type}; only files, directories and symlinks are written`);
  }
}
