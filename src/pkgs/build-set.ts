import { join } from "node:path";
import type { BuildContext } from "../core/context.ts";
import { buildPackage, type PackageArtifact } from "./build.ts";
import { buildOrder, loadPackages } from "./graph.ts";

/**
 * Builds the named packages and what they depend on, dependencies first, each from the cache when it
 * can: the tree's (pkgs/), and those of `moreDir` (which may add packages and replace the tree's).
 */
export async function buildPackageSet(names: readonly string[], ctx: BuildContext, moreDir?: string, onBuilt?: (artifact: PackageArtifact, seconds: number) => void | Promise<void>): Promise<PackageArtifact[]> {
  const kernelDir = join(ctx.projectRoot, "kernel");
  const defs = await loadPackages(join(ctx.projectRoot, "pkgs"), kernelDir);
  if (moreDir) for (const [name, def] of await loadPackages(moreDir, kernelDir)) defs.set(name, def);
  const built = new Map<string, PackageArtifact>();
  for (const def of buildOrder(defs, names, "the command line")) {
    const started = Date.now();
    const artifact = await buildPackage(def, built, ctx);
    built.set(def.name, artifact);
    await onBuilt?.(artifact, (Date.now() - started) / 1000);
  }
  return names.map((n) => built.get(n)!);
}
