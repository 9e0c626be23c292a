import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

/** A temporary directory removed when the test file ends. */
export async function tempDir(prefix = "bronze-test-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export const PROJECT_ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
