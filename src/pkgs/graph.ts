import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { InputError } from "../core/errors.ts";
import { displayPath } from "../core/paths.ts";
import { loadPackage, type PackageDef } from "./schema.ts";

/** The packages of a directory (NAME/pkg.yaml), by name; `kernelDir` holds the source.yaml that `kernel: source` means. */
export async function loadPackages(pkgsDir: string, kernelDir?: string): Promise<Map<string, PackageDef>> {
  const names = (await readdir(pkgsDir)).sort();
  const defs = new Map<string, PackageDef>();
  for (const name of names) {
    const file = join(pkgsDir, name, "pkg.yaml");
    if (await stat(file).then(() => true, () => false)) defs.set(name, await loadPackage(file, kernelDir));
  }
  return defs;
}

/** The packages `wanted` needs, dependencies first; unknown names and cycles are input errors. */
export function buildOrder(defs: ReadonlyMap<string, PackageDef>, wanted: readonly string[], wantedBy: string): PackageDef[] {
  const order: PackageDef[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string, from: string, path: string[]): void => {
    const def = defs.get(name);
    if (!def) {
      throw new InputError(`${from}: unknown package '${name}'; known: ${[...defs.keys()].join(", ")}`);
    }
    if (state.get(name) === "done") return;
    if (state.get(name) === "visiting") {
      throw new InputError(`${displayPath(def.file)}: dependency cycle: ${[...path, name].join(" -> ")}`);
    }
    state.set(name, "visiting");
    for (const dep of def.dependencies) visit(dep, displayPath(def.file), [...path, name]);
    state.set(name, "done");
    order.push(def);
  };
  for (const name of wanted) visit(name, wantedBy, []);
  return order;
}
