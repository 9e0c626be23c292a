import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { loadKernelSource } from "../../src/kernel/source.ts";
import { bronze } from "../helpers/cli.ts";
import { PROJECT_ROOT } from "../helpers/tmp.ts";

// bronze outdated against this machine's archive lists, each row checked with apt-cache and dpkg themselves

async function dpkgNewest(versions: readonly string[]): Promise<string | undefined> {
  let newest: string | undefined;
  for (const v of versions) if (!newest || (await execa("dpkg", ["--compare-versions", v, "gt", newest], { reject: false })).exitCode === 0) newest = v;
  return newest;
}

test("bronze outdated: each Debian pin against what apt-cache offers, ordered as dpkg orders; exit 1 exactly when one is behind", async () => {
  const result = await bronze(["outdated", "--json"]);
  const rows = JSON.parse(String(result.stdout)) as { pin: string; pinned: string; newest?: string; behind: boolean }[];
  const musl = rows.find((r) => r.pin === "pkgs/musl: Debian source musl");
  const offered = [...(await execa("apt-cache", ["showsrc", "musl"])).stdout.matchAll(/^Version: (\S+)$/gm)].map((m) => m[1] as string);
  // with no deb-src lists both sides would be undefined: the comparison must be of something
  assert.ok(offered.length > 0, "apt-cache showsrc musl offers versions (make enables deb-src)");
  assert.equal(musl?.newest, await dpkgNewest(offered));
  const pinned = await loadKernelSource(join(PROJECT_ROOT, "kernel"));
  const kernel = rows.find((r) => r.pin === `kernel/source.yaml: ${pinned.package}`);
  const madison = (await execa("apt-cache", ["madison", pinned.package])).stdout.split("\n").map((l) => l.split("|")[1]?.trim() ?? "").filter(Boolean);
  assert.ok(madison.length > 0, `apt-cache madison ${pinned.package} offers versions`);
  const newestKernel = await dpkgNewest(madison);
  assert.equal(kernel?.newest, newestKernel);
  assert.equal(kernel?.behind, (await execa("dpkg", ["--compare-versions", newestKernel ?? "", "gt", kernel?.pinned ?? ""], { reject: false })).exitCode === 0);
  const series = (await execa("apt-cache", ["pkgnames", "linux-source-"])).stdout.split("\n").filter((n) => /^linux-source-\d+\.\d+$/.test(n));
  const top = series.map((n) => n.slice("linux-source-".length)).sort((a, b) => Number(a.split(".")[0]) - Number(b.split(".")[0]) || Number(a.split(".")[1]) - Number(b.split(".")[1])).at(-1);
  assert.ok(top, "the archive offers a linux-source series");
  assert.match(rows.find((r) => r.pin === "kernel/source.yaml: kernel series")?.newest ?? "", new RegExp(`^${(top ?? "").replace(".", "\\.")} `));
  assert.ok(rows.some((r) => r.pin.includes("kernel-hardening-checker") && !r.behind));
  assert.equal(result.exitCode, rows.some((r) => r.behind) ? 1 : 0, String(result.all));
});
