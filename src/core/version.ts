import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { InputError } from "./errors.ts";

/** A release version: digits and dots, optionally a suffix; never '+', which boot counting uses in file names. */
const VERSION = /^\d+\.\d+\.\d+([-.~][0-9A-Za-z.~-]+)?$/;

/**
 * The OS version of the images this project builds: $BRONZE_VERSION when set (release
 * pipelines take it from the tag), else package.json's.
 */
export async function projectVersion(projectRoot: string): Promise<string> {
  const fromEnv = process.env.BRONZE_VERSION;
  if (fromEnv !== undefined && fromEnv !== "") {
    if (!VERSION.test(fromEnv)) throw new InputError(`BRONZE_VERSION=${fromEnv}: give a version such as 1.2.3 or 1.2.3-rc.1 (no '+': boot counting uses it in file names)`);
    return fromEnv;
  }
  const pkg = JSON.parse(await readFile(join(projectRoot, "package.json"), "utf8")) as { version: string };
  return pkg.version;
}
