import { readFileSync } from "node:fs";
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
  return packageVersion(projectRoot);
}

/** package.json's version: the CLI's own, and the images' unless $BRONZE_VERSION says otherwise. */
export function packageVersion(projectRoot: string): string {
  return (JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as { version: string }).version;
}
