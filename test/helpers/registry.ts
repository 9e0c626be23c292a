import { after } from "node:test";
import { launchRegistry, type LocalRegistry, type RegistryOptions } from "./registry-process.ts";
import { tempDir } from "./tmp.ts";

/** A docker-registry for one test file: started on a free loopback port, stopped when the file ends. */
export async function startRegistry(options: RegistryOptions = {}): Promise<LocalRegistry> {
  const registry = await launchRegistry(await tempDir("registry-"), options);
  after(registry.stop);
  return registry;
}
