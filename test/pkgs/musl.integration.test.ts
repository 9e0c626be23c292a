import assert from "node:assert/strict";
import { copyFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import { execa } from "execa";
import { runSandboxed } from "../../src/core/sandbox.ts";
import { defaultCacheDir } from "../../src/core/store.ts";
import { builtImage } from "../helpers/build.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// the musl the image ships, patched for CVE-2025-26519: a program linked against it (in the sandbox, as
// packages are built) gets an encoding error for the EUC-KR input the upstream fix names
before(() => builtImage("minimal"), { timeout: 30 * 60_000 });

test("musl as built for the image refuses EUC-KR \\xc8\\x41 (CVE-2025-26519 patched), and its SBOM says which patch resolves it", async () => {
  const record = JSON.parse(await readFile(join(PROJECT_ROOT, "_out/minimal/manifest.json"), "utf8")) as { packages: { name: string; key: string; patches?: { file: string; fixes: string[] }[] }[] };
  const musl = record.packages.find((p) => p.name === "musl");
  assert.deepEqual(musl?.patches?.map((p) => [p.file, p.fixes]), [["patches/cve-2025-26519-euckr-lead-byte.patch", ["CVE-2025-26519"]]]);
  const work = await tempDir();
  await copyFile(join(PROJECT_ROOT, "pkgs/musl/test/iconv-euckr.c"), join(work, "iconv-euckr.c"));
  await runSandboxed("gcc -specs=/deps/musl/usr/lib/musl-gcc.specs -static -O2 -o iconv-euckr iconv-euckr.c", {
    cwd: "/build",
    env: {},
    logFile: join(work, "build.log"),
    mounts: [
      { host: work, at: "/build", writable: true },
      { host: join(defaultCacheDir(PROJECT_ROOT), "store", musl?.key ?? "", "out"), at: "/deps/musl" },
    ],
  });
  const run = await execa(join(work, "iconv-euckr"), [], { reject: false });
  assert.equal(run.exitCode, 0, `${run.stdout}${run.stderr}`);
  assert.equal(run.stdout, "EILSEQ");

  const sbom = JSON.parse(await readFile(join(PROJECT_ROOT, "_out/minimal/minimal.cdx.json"), "utf8")) as { components: { name: string; pedigree?: { patches: { resolves: { id: string }[] }[]; commits: { uid: string }[] } }[] };
  const pedigree = sbom.components.find((c) => c.name === "musl")?.pedigree;
  assert.deepEqual(pedigree?.patches.flatMap((p) => p.resolves.map((r) => r.id)), ["CVE-2025-26519"]);
  assert.deepEqual(pedigree?.commits.map((c) => c.uid), ["e5adcd97b5196e29991b524237381a0202a60659"]);
});
