// A package's two outputs: what images get (programs, shared libraries, data) and what only the packages that
// depend on it get (headers, static libraries, objects, libtool and pkg-config files, compiler specs, manuals).
// One package build makes both; the rootfs takes the runtime output, a dependant's sandbox shows both.
import { lstatSync } from "node:fs";
import { pacer } from "../core/pace.ts";
import type { TreeWeight } from "../core/tree-size.ts";
import { walkTree } from "../core/walk.ts";

export const OUTPUTS = ["runtime", "development"] as const;
export type PackageOutput = (typeof OUTPUTS)[number];

/** The output a file of a package (its path in the package, no leading slash) belongs to. */
export function outputOf(path: string): PackageOutput {
  const development = /^usr\/(include|share\/(man|doc|info))(\/|$)/.test(path) || /\.(a|o|la|specs)$/.test(path) || /(^|\/)pkgconfig(\/|$)/.test(path);
  return development ? "development" : "runtime";
}

/** The regular files of each output of a built package (its directory), and their bytes. */
export async function outputWeights(dir: string): Promise<Record<PackageOutput, TreeWeight>> {
  const weights = { runtime: { files: 0, bytes: 0 }, development: { files: 0, bytes: 0 } };
  const pace = pacer();
  for (const { rel, kind } of walkTree(dir)) {
    if (kind !== "file") continue;
    const weight = weights[outputOf(rel)];
    weight.files++;
    weight.bytes += lstatSync(`${dir}/${rel}`, { throwIfNoEntry: false })?.size ?? 0;
    await pace();
  }
  return weights;
}

/** How `bronze pkg build` tells a package's outputs: "runtime N file(s) X KiB, development M file(s) Y KiB". */
export function describeOutputs(weights: Record<PackageOutput, TreeWeight>): string {
  return OUTPUTS.map((o) => `${o} ${weights[o].files} file(s) ${(weights[o].bytes / 1024).toFixed(1)} KiB`).join(", ");
}
