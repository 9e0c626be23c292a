import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { execa } from "execa";
import { bronze } from "../helpers/cli.ts";
import { PROJECT_ROOT } from "../helpers/tmp.ts";

// The size budget on real builds (the minimal kernel comes from the cache): a profile whose
// rootfs grows past its budget fails to build, names the artifact and the package that grew,
// and leaves the previous outputs in place.

let dir = "";
const OUT = join(PROJECT_ROOT, "_out", "budget");

async function profile(packages: string[], budget = "sizeBudget:\n  percent: 5\n"): Promise<string> {
  const minimal = await readFile(join(PROJECT_ROOT, "profiles", "minimal.yaml"), "utf8");
  const text = minimal
    .replace(/^name: minimal$/m, "name: budget")
    .replace(/^packages:\n( {2}- .*\n)+/m, `packages:\n${packages.map((p) => `  - ${p}\n`).join("")}`);
  const file = join(dir, "budget.yaml");
  await writeFile(file, `${text}${budget}`);
  return file;
}

const manifest = async () => JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as { sizes: { components: Record<string, number> }; artifacts: { name: string; size: number }[] };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "bronze-budget-test-"));
  await rm(OUT, { recursive: true, force: true });
});
after(() => rm(dir, { recursive: true, force: true }));

test("a build within its budget passes and records what each component weighs", async () => {
  const first = await bronze(["build", "--profile", await profile(["musl", "init", "hello-module"])]);
  assert.equal(first.exitCode, 0, String(first.all));
  const again = await bronze(["build", "--profile", await profile(["musl", "init", "hello-module"])]);
  assert.equal(again.exitCode, 0, String(again.all));
  const { sizes } = await manifest();
  assert.deepEqual(Object.keys(sizes.components).sort(), ["init", "kernel minimal", "musl"]);
  assert.ok(Object.values(sizes.components).every((n) => n > 0));
  // what a package weighs is what it put in the image: the files the SBOM says it contains, at the sizes
  // unsquashfs reads in rootfs.sqsh (not its whole build output, headers and static libraries included)
  const listing = (await execa("unsquashfs", ["-lls", "-d", "", join(OUT, "rootfs.sqsh")])).stdout;
  const sizeOf = new Map<string, number>(listing.split("\n").flatMap((line) => {
    const m = /^\S+ \S+\s+(\d+) \S+ \S+ (\/\S+)/.exec(line);
    return m ? [[`.${m[2]}`, Number(m[1])] as [string, number]] : [];
  }));
  const spdx = JSON.parse(await readFile(join(OUT, "budget.spdx.json"), "utf8")) as { files: { SPDXID: string; fileName: string }[]; relationships: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[] };
  const fileName = new Map(spdx.files.map((f) => [f.SPDXID, f.fileName]));
  for (const name of ["musl", "init"]) {
    const contained = spdx.relationships.filter((r) => r.spdxElementId === `SPDXRef-Package-package-${name}` && r.relationshipType === "CONTAINS");
    const bytes = contained.reduce((sum, r) => sum + (sizeOf.get(fileName.get(r.relatedSpdxElement) ?? "") ?? NaN), 0);
    assert.equal(sizes.components[name], bytes, `${name}: ${contained.length} files in the image`);
  }
  assert.ok((sizes.components.musl ?? 0) < 1 << 20, "musl's headers and static libraries are not in the image");
});

test("a rootfs that grows past the budget fails the build, naming the artifacts and the package that grew; the previous outputs stay", async () => {
  const before = await readFile(join(OUT, "manifest.json"));
  const grown = await bronze(["build", "--profile", await profile(["musl", "init", "e2fsprogs", "hello-module"])]);
  assert.equal(grown.exitCode, 1, String(grown.all));
  assert.match(String(grown.stderr), /size budget exceeded against the previous build of this profile/);
  assert.match(String(grown.stderr), /rootfs\.sqsh: [\d,]+ -> [\d,]+ bytes \(\+\d+\.\d%, budget 5%\)/);
  assert.match(String(grown.stderr), /what grew:\n {2}e2fsprogs: new, [\d,]+ bytes/);
  assert.match(String(grown.stderr), /raise sizeBudget\.percent in .*budget\.yaml, or accept this growth once with --accept-size-growth/);
  assert.deepEqual(await readFile(join(OUT, "manifest.json")), before, "nothing published");

  const accepted = await bronze(["build", "--profile", await profile(["musl", "init", "e2fsprogs", "hello-module"]), "--accept-size-growth"]);
  assert.equal(accepted.exitCode, 0, String(accepted.all));
  assert.ok((await manifest()).sizes.components.e2fsprogs, "the new sizes are the reference now");
});

test("a bad sizeBudget is refused at its line, exit code 2", async () => {
  const bad = await bronze(["build", "--profile", await profile(["musl", "init"], "sizeBudget:\n  percent: lots\n")]);
  assert.equal(bad.exitCode, 2);
  assert.match(String(bad.stderr), /budget\.yaml:\d+: 'sizeBudget\.percent' must be a whole number/);
  const unknown = await bronze(["build", "--profile", await profile(["musl", "init"], "sizeBudget:\n  pct: 5\n")]);
  assert.equal(unknown.exitCode, 2);
  assert.match(String(unknown.stderr), /budget\.yaml:\d+.*pct/);
});
