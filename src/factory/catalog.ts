/**
 * The extensions a factory offers: for now the extension sources of a directory (the tree's
 * extensions/ unless told otherwise), each built by the factory itself from its source.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { InputError } from "../core/errors.ts";
import { parseExtensionManifest } from "../extensions/manifest.ts";

export interface CatalogEntry {
  name: string;
  version: string;
  description: string;
  /** the extension's source directory */
  dir: string;
}

/** Every extension under `dir` (a directory of extension sources, each with its manifest.yaml), by name. */
export async function loadCatalog(dir: string): Promise<CatalogEntry[]> {
  const names = await readdir(dir).catch(() => {
    throw new InputError(`--catalog ${dir}: cannot read it; give a directory of extension sources (each with a manifest.yaml)`);
  });
  const entries: CatalogEntry[] = [];
  for (const name of names.sort()) {
    const manifestPath = join(dir, name, "manifest.yaml");
    const text = await readFile(manifestPath, "utf8").catch(() => undefined);
    if (text === undefined) continue;
    const manifest = parseExtensionManifest(manifestPath, text);
    entries.push({ name: manifest.name, version: manifest.version, description: manifest.description, dir: join(dir, name) });
  }
  if (entries.length === 0) throw new InputError(`--catalog ${dir}: holds no extension (no */manifest.yaml)`);
  return entries;
}
