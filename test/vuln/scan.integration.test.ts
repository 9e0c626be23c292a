import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import { bronze } from "../helpers/cli.ts";
import { builtImage } from "../helpers/build.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// the gate through the CLI on the SBOM a real build wrote
const ADVISORIES = join(PROJECT_ROOT, "test/fixtures/vuln/osv");
before(() => builtImage("minimal"), { timeout: 30 * 60_000 });

test("bronze vuln scan on the minimal image's SBOM: musl's CVE-2025-26519 shows as fixed by its patch; the same SBOM without the patch fails (exit 1), a reviewed VEX statement lets that pass and is stale on the patched one; malformed input exits 2 naming the file and the field", async () => {
  const fixed = await bronze(["vuln", "scan", "--profile", "minimal", "--advisories", ADVISORIES]);
  assert.equal(fixed.exitCode, 0, String(fixed.all));
  assert.match(String(fixed.stdout), /^fixed musl pkg:deb\/debian\/musl@1\.2\.3-1\?arch=source: DEBIAN-CVE-2025-26519, by a patch of its build/m);
  assert.match(String(fixed.stdout), /0 finding\(s\) at or above high, 0 below, 1 fixed by a patch, 0 suppressed by VEX/);
  assert.doesNotMatch(String(fixed.stdout), /CVE-2024-1086/);

  // the SBOM as it was before the patch: its musl component without the pedigree
  const dir = await tempDir();
  const sbom = JSON.parse(await readFile(join(PROJECT_ROOT, "_out/minimal/minimal.cdx.json"), "utf8")) as { components: Record<string, unknown>[] };
  const unpatched = join(dir, "unpatched.cdx.json");
  await writeFile(unpatched, JSON.stringify({ ...sbom, components: sbom.components.map(({ pedigree: _, ...c }) => c) }));
  const failed = await bronze(["vuln", "scan", "--sbom", unpatched, "--advisories", ADVISORIES]);
  assert.equal(failed.exitCode, 1, String(failed.all));
  assert.match(String(failed.stdout), /^FAIL musl pkg:deb\/debian\/musl@1\.2\.3-1\?arch=source: DEBIAN-CVE-2025-26519 \(CVE-2025-26519\), high, no fixed version/m);

  const vex = join(dir, "minimal.vex.json");
  const statement = { vulnerability: { name: "CVE-2025-26519" }, products: [{ "@id": "pkg:deb/debian/musl" }], status: "not_affected", justification: "vulnerable_code_not_in_execute_path", impact_statement: "no program of the minimal image calls iconv" };
  await writeFile(vex, JSON.stringify({ "@context": "https://openvex.dev/ns/v0.2.0", "@id": "urn:bronze:vex:minimal", author: "bronze tests", timestamp: "2026-12-02T00:00:00Z", version: 1, statements: [statement] }));
  const passed = await bronze(["vuln", "scan", "--sbom", unpatched, "--advisories", ADVISORIES, "--vex", vex, "--json"]);
  assert.equal(passed.exitCode, 0, String(passed.all));
  const verdict = JSON.parse(String(passed.stdout)) as { passed: boolean; suppressed: { advisory: string; vex: { statement: string } }[] };
  assert.equal(verdict.passed, true);
  assert.deepEqual(verdict.suppressed.map((s) => [s.advisory, s.vex.statement]), [["DEBIAN-CVE-2025-26519", `${vex}: statements[0]`]]);
  const stale = await bronze(["vuln", "scan", "--profile", "minimal", "--advisories", ADVISORIES, "--vex", vex]);
  assert.equal(stale.exitCode, 1, String(stale.all));
  assert.match(String(stale.stdout), new RegExp(`^STALE ${vex}: statements\\[0\\]: CVE-2025-26519 for pkg:deb/debian/musl matches no finding`, "m"));

  const bad = join(dir, "bad");
  await mkdir(bad);
  await writeFile(join(bad, "X.json"), JSON.stringify({ id: "X", affected: [{ package: { ecosystem: "Debian:12", name: "musl" }, ranges: [{ type: "ECOSYSTEM", events: [{ fixed: 3 }] }] }] }));
  const malformed = await bronze(["vuln", "scan", "--profile", "minimal", "--advisories", bad]);
  assert.equal(malformed.exitCode, 2, String(malformed.all));
  assert.match(String(malformed.stderr), new RegExp(`${join(bad, "X.json")}: affected\\[0\\]: ranges\\[0\\]: events\\[0\\] must be one of`));
  const both = await bronze(["vuln", "scan", "--profile", "minimal", "--sbom", "x.json", "--advisories", ADVISORIES]);
  assert.equal(both.exitCode, 2);
});
