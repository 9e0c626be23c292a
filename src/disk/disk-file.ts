import { open } from "node:fs/promises";
import { GptError, parseGpt, SECTOR } from "./gpt.ts";

/** The GPT of a disk image file (its first 34 sectors); GptError when it has none or a damaged one. */
export async function readGpt(path: string): Promise<ReturnType<typeof parseGpt>> {
  const handle = await open(path, "r");
  try {
    const head = Buffer.alloc(34 * SECTOR);
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
