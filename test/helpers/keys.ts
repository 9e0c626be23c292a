import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { KEY_ROOT } from "../../src/kernel/signing-key.ts";

/** Ephemeral key directories currently on the key tmpfs. */
export async function leftoverKeyDirs(): Promise<string[]> {
  return (await readdir(KEY_ROOT)).filter((n) => n.startsWith("bronze-modkey-")).map((n) => join(KEY_ROOT, n));
}
