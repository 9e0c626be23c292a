import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

/** Every file below `dir` with its inode and modification time: what stays equal when nothing is rewritten. */
export async function fileIdentities(dir: string): Promise<Record<string, string>> {
  const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  const pairs = await Promise.all(
    files.map(async (e) => {
      const info = await stat(join(e.parentPath, e.name));
      return [join(e.parentPath, e.name), `${info.ino} ${info.mtimeMs}`] as const;
    }),
  );
  return Object.fromEntries(pairs);
}
