import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ownedName } from "./ownership.ts";

/** Writes `path` whole or not at all: a temporary name beside it, synced to disk, then renamed over it. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), ownedName(`.${basename(path)}`));
  try {
    const handle = await open(tmp, "wx");
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}
