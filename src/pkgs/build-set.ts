import { join } from "node:path";
import type { Arch } from "../core/arch.ts";
import type { BuildContext } from "../core/context.ts";
import { buildPackage, type PackageArtifact } from "./build.ts";
import { buildOrder, loadPackages } from "./graph.ts";

/**
 * Builds the named packages for `arch` and what they depend on, each from the cache when it can: the tree's
 * (pkgs/), and those of `moreDir` (which may add packages and replace the tree's). A package starts
 * once its dependencies are built, at most `jobs` at a time (default: ctx.jobs); `onBuilt` hears of
 * each as it ends, with how long it took.
 */
export async function buildPackageSet(
  names: readonly string[],
  arch: Arch,
  ctx: BuildContext,
  moreDir?: string,
  onBuilt?: (artifact: PackageArtifact, seconds: number) => void | Promise<void>,
  jobs = ctx.jobs,
): Promise<PackageArtifact[]> {
  const kernelDir = join(ctx.projectRoot, "kernel");
  const defs = await loadPackages(join(ctx.projectRoot, "pkgs"), kernelDir);
  if (moreDir) for (const [name, def] of await loadPackages(moreDir, kernelDir)) defs.set(name, def);
  const order = buildOrder(defs, names, "the command line");
  const slots = slotsOf(Math.max(1, jobs));
  const building = new Map<string, Promise<PackageArtifact>>();
  for (const def of order) {
    building.set(
      def.name,
      (async () => {
        const deps = new Map(await Promise.all(def.dependencies.map(async (d) => [d, await building.get(d)!] as const)));
        const release = await slots();
        try {
          const started = Date.now();
          const artifact = await buildPackage(def, deps, arch, ctx);
          await onBuilt?.(artifact, (Date.now() - started) / 1000);
          return artifact;
        } finally {
          release();
        }
      })(),
    );
  }
  // every build settles before the first failure is thrown: none is left running
  const settled = await Promise.allSettled(building.values());
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) throw failed.reason;
  return Promise.all(names.map((n) => building.get(n)!));
}

/** A counting semaphore: wait for a slot, get back what frees it. */
function slotsOf(count: number): () => Promise<() => void> {
  let free = count;
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else free++;
  };
  return () =>
    new Promise((resolve) => {
      if (free > 0) {
        free--;
        resolve(release);
      } else {
        waiting.push(() => resolve(release));
      }
    });
}
