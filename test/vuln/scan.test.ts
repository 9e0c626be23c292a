import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { cvss3BaseScore } from "../../src/vuln/cvss.ts";
import { inRange, parseAdvisory, readAdvisories } from "../../src/vuln/osv.ts";
import { gate, sbomComponents, type Component } from "../../src/vuln/scan.ts";
import { compareDebian } from "../../src/vuln/versions.ts";
import { parseVex } from "../../src/vuln/vex.ts";
import { seededRandom } from "../helpers/random.ts";
import { PROJECT_ROOT } from "../helpers/tmp.ts";

const FIXTURES = join(PROJECT_ROOT, "test/fixtures/vuln/osv");
// the purls bronze's SBOMs give its Debian-sourced packages and kernel
const SHIPPED: Component[] = [
  { name: "musl", version: "1.2.3", purl: "pkg:deb/debian/musl@1.2.3-1?arch=source" },
  { name: "linux", version: "6.1.192", purl: "pkg:deb/debian/linux@6.1.192-2?arch=source" },
  { name: "e2fsprogs", version: "1.47.0", purl: "pkg:deb/debian/e2fsprogs@1.47.0-2?arch=source" },
];
const vexDoc = (statements: unknown[]) => ({ "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.test/vex/1", author: "bronze tests", timestamp: "2026-12-02T00:00:00Z", version: 1, statements });
/** a record made up for the test: linux fixed for Debian 12 after the shipped version */
const fixedLater = parseAdvisory("test: TEST-2026-0001", {
  id: "TEST-2026-0001",
  aliases: ["CVE-2026-0001"],
  severity: [{ type: "CVSS_V3", score: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H" }],
  affected: [{ package: { ecosystem: "Debian:12", name: "linux" }, ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "6.1.100-1" }, { fixed: "6.1.193-1" }] }] }],
});

test("the fixtures against what bronze ships: musl's CVE-2025-26519 fails the gate (no fixed version for Debian 12), the kernel is past CVE-2024-1086's fix", async () => {
  const advisories = await readAdvisories(FIXTURES);
  const result = gate(SHIPPED, advisories, [], "high");
  assert.equal(result.passed, false);
  assert.deepEqual(result.failing.map((f) => [f.component.name, f.advisory.id, f.advisory.severity, f.fixed ?? null]), [["musl", "DEBIAN-CVE-2025-26519", "high", null]]);
  assert.ok(!result.findings.some((f) => f.advisory.id === "DEBIAN-CVE-2024-1086"), "6.1.192-2 is after 6.1.76-1");
  // the same kernel before the fix is affected, and the finding names the fixed version
  const old = gate([{ name: "linux", version: "6.1.69", purl: "pkg:deb/debian/linux@6.1.69-1?arch=source" }], advisories, [], "high");
  assert.deepEqual(old.failing.map((f) => [f.advisory.id, f.fixed]), [["DEBIAN-CVE-2024-1086", "6.1.76-1"]]);
});

test("a component whose build patched the advisory out shows it as fixed by the patch: neither failing nor excepted", async () => {
  const patched = SHIPPED.map((c) => (c.name === "musl" ? { ...c, patched: ["CVE-2025-26519"] } : c));
  const result = gate(patched, await readAdvisories(FIXTURES), [], "high");
  assert.equal(result.passed, true);
  assert.deepEqual(result.fixedByPatch.map((f) => [f.component.name, f.advisory.id]), [["musl", "DEBIAN-CVE-2025-26519"]]);
  assert.deepEqual([result.findings.length, result.suppressed.length], [0, 0]);
  const cdx = { components: [{ name: "musl", version: "1.2.3", purl: SHIPPED[0]?.purl, pedigree: { patches: [{ type: "backport", resolves: [{ type: "security", id: "CVE-2025-26519" }] }] } }] };
  assert.deepEqual(sbomComponents("x.cdx.json", cdx)[0]?.patched, ["CVE-2025-26519"]);
});

test("a finding below the threshold is listed, not failing; one fixed later names that version", () => {
  const result = gate(SHIPPED, [fixedLater], [], "high");
  assert.equal(result.passed, true);
  assert.deepEqual(result.findings.map((f) => [f.advisory.id, f.advisory.severity, f.fixed]), [["TEST-2026-0001", "medium", "6.1.193-1"]]);
  assert.equal(gate(SHIPPED, [fixedLater], [], "medium").passed, false);
});

test("VEX: not_affected with a justification suppresses; a statement that matches nothing is stale and fails; affected only annotates", async () => {
  const advisories = await readAdvisories(FIXTURES);
  const statements = parseVex("vex.json", vexDoc([
    { vulnerability: { name: "CVE-2025-26519" }, products: [{ "@id": "pkg:deb/debian/musl" }], status: "not_affected", justification: "vulnerable_code_not_in_execute_path", impact_statement: "no program of the image converts EUC-KR text with iconv" },
  ]));
  const suppressed = gate(SHIPPED, advisories, statements, "high");
  assert.equal(suppressed.passed, true);
  assert.deepEqual(suppressed.suppressed.map((f) => [f.advisory.id, f.vex?.where]), [["DEBIAN-CVE-2025-26519", "vex.json: statements[0]"]]);

  const stale = parseVex("vex.json", vexDoc([{ vulnerability: { name: "CVE-2024-1086" }, products: [{ "@id": "pkg:deb/debian/linux" }], status: "fixed" }]));
  const withStale = gate(SHIPPED, advisories, [...statements, ...stale], "high");
  assert.equal(withStale.passed, false);
  assert.deepEqual(withStale.stale.map((s) => s.where), ["vex.json: statements[0]"]);

  const affected = parseVex("vex.json", vexDoc([{ vulnerability: { name: "CVE-2025-26519" }, products: ["pkg:deb/debian/musl@1.2.3-1?arch=source"], status: "affected", action_statement: "musl is patched in the next release" }]));
  const annotated = gate(SHIPPED, advisories, affected, "high");
  assert.equal(annotated.passed, false);
  assert.equal(annotated.failing[0]?.vex?.reason, "musl is patched in the next release");
});

test("VEX statements without what their status needs are refused, naming the file and the statement", () => {
  const refused = (statement: unknown, pattern: RegExp) => assert.throws(() => parseVex("reviewed.vex.json", vexDoc([statement])), pattern);
  const base = { vulnerability: { name: "CVE-2025-26519" }, products: [{ "@id": "pkg:deb/debian/musl" }] };
  refused({ ...base, status: "not_affected", impact_statement: "x" }, /reviewed.vex.json: statements\[0\]: not_affected needs a justification, one of component_not_present/);
  refused({ ...base, status: "not_affected", justification: "vulnerable_code_not_present" }, /not_affected needs an impact_statement/);
  refused({ ...base, status: "affected" }, /affected needs an action_statement/);
  refused({ ...base, status: "maybe" }, /status must be not_affected, affected, fixed or under_investigation/);
  refused({ ...base, products: [{ "@id": "musl" }], status: "fixed" }, /products\[0\]\["@id"\] must be a purl/);
  assert.throws(() => parseVex("v.json", { statements: [] }), /v.json: @context must be an OpenVEX context/);
});

test("OSV ranges as the schema evaluates them: introduced, fixed, last_affected, limit", () => {
  const cases: [string, Parameters<typeof inRange>[1], boolean][] = [
    ["1.0-1", [{ introduced: "0" }], true],
    ["1.0-1", [{ introduced: "0" }, { fixed: "1.0-1" }], false],
    ["1.0-1", [{ introduced: "0" }, { fixed: "1.0-2" }], true],
    ["1.0-1", [{ introduced: "1.0-2" }], false],
    ["1.0-1", [{ introduced: "0" }, { last_affected: "1.0-1" }], true],
    ["1.0-2", [{ introduced: "0" }, { last_affected: "1.0-1" }], false],
    ["2.0-1", [{ introduced: "0" }, { fixed: "1.5-1" }, { introduced: "1.9-1" }], true],
    ["1.7-1", [{ fixed: "1.5-1" }, { introduced: "0" }, { introduced: "1.9-1" }], false],
    ["1.0-1", [{ introduced: "0" }, { limit: "1.0-1" }], false],
    ["1.0~rc1-1", [{ introduced: "0" }, { fixed: "1.0-1" }], true],
  ];
  for (const [version, events, expected] of cases) assert.equal(inRange(version, events, compareDebian), expected, `${version} in ${JSON.stringify(events)}`);
});

test("CVSS 3.x base scores", () => {
  assert.equal(cvss3BaseScore("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), 9.8);
  assert.equal(cvss3BaseScore("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"), 8.1);
  assert.equal(cvss3BaseScore("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"), 7.8);
  assert.equal(cvss3BaseScore("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"), 6.1);
  assert.equal(cvss3BaseScore("CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H"), 9.9);
  assert.equal(cvss3BaseScore("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"), 0);
});

test("the components of bronze's own CycloneDX and SPDX documents, by purl", async () => {
  const cdx = { components: [{ name: "musl", version: "1.2.3", purl: SHIPPED[0]?.purl }, { name: "/bin", type: "file" }] };
  assert.deepEqual(sbomComponents("x.cdx.json", cdx), [SHIPPED[0]]);
  const spdx = { packages: [{ name: "musl", versionInfo: "1.2.3", externalRefs: [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: SHIPPED[0]?.purl }] }] };
  assert.deepEqual(sbomComponents("x.spdx.json", spdx), [SHIPPED[0]]);
  assert.throws(() => sbomComponents("x.json", {}), /x.json: neither a CycloneDX/);
  assert.ok((await readFile(join(FIXTURES, "../README.md"), "utf8")).includes("DEBIAN-CVE-2025-26519"), "every fixture names its sources");
});

test("fuzz: 300 OSV records and VEX documents of the wrong shape are each read or refused naming the file, never an internal error", async () => {
  const next = seededRandom(2207);
  const record = JSON.parse(await readFile(join(FIXTURES, "DEBIAN-CVE-2025-26519.json"), "utf8")) as Record<string, unknown>;
  const vex = vexDoc([{ vulnerability: { name: "CVE-2025-26519", aliases: ["X"] }, products: [{ "@id": "pkg:deb/debian/musl" }], status: "not_affected", justification: "vulnerable_code_not_present", impact_statement: "y" }]);
  const confuse = (value: unknown): unknown => {
    const copy = structuredClone(value) as Record<string, unknown>;
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, path: (string | number)[]) => {
      if (path.length) paths.push(path);
      if (v && typeof v === "object") for (const [k, child] of Object.entries(v)) walk(child, [...path, Array.isArray(v) ? Number(k) : k]);
    };
    walk(copy, []);
    const path = paths[Math.floor(next() * paths.length)] as (string | number)[];
    let parent = copy as Record<string | number, unknown>;
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
    parent[path.at(-1) as string | number] = [null, 7, "", [], {}, true, [null]][Math.floor(next() * 7)];
    return copy;
  };
  for (let i = 0; i < 300; i++) {
    const file = `case-${i}.json`;
    try {
      if (i % 2) parseAdvisory(file, confuse(record) as Record<string, unknown>);
      else parseVex(file, confuse(vex) as Record<string, unknown>);
    } catch (e) {
      assert.equal((e as Error).name, "InputError", `${file}: ${(e as Error).stack ?? String(e)}`);
      assert.match((e as Error).message, new RegExp(`^${file}`));
    }
  }
});
