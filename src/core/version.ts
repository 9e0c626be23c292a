import { readFile } from "node:fs/promises";
import { join } from "node:path";

/** The project's version (package.json): the OS version of the images it builds. */
export async function projectVersion(projectRoot: string): Promise<string> {
  const pkg = JSON.parse(await readFile(join(projectRoot, "package.json"), "utf8")) as { version: string };
  return pkg.version;
}
