import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import { bronze } from "../helpers/cli.ts";
import { loadKernelSource } from "../../src/kernel/source.ts";
import { buildImage } from "../../src/oci/image.ts";
import { layoutFiles, writeLayoutDir } from "../../src/oci/layout.ts";
import { writeTar } from "../../src/oci/tar.ts";
import { builtImage, startBuild } from "../helpers/build.ts";
import { startRegistry } from "../helpers/registry.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// the gate through the CLI on the SBOM a real build wrote
const ADVISORIES = join(PROJECT_ROOT, "test/fixtures/vuln/osv");
before(() => builtImage("minimal"), { timeout: 30 * 60_000 });

test("bronze vuln scan on the minimal image's SBOM: musl's CVE-2025-26519 shows as fixed by its patch; the same SBOM without the patch fails (exit 1), a reviewed VEX statement lets that pass and is stale on the patched one; malformed input exits 2 naming the file and the field", async () => {
  const fixed = await bronze(["vuln", "scan", "--profile", "minimal", "--advisories", ADVISORIES]);
  assert.equal(fixed.exitCode, 0, String(fixed.all));
  assert.match(String(fixed.stdout), /^fixed musl pkg:deb\/debian\/musl@1\.2\.3-1\?arch=source: DEBIAN-CVE-2025-26519, by a patch of its build/m);
  assert.match(String(fixed.stdout), /0 finding\(s\) at or above high, 0 below, 1 fixed by a patch, 0 suppressed by VEX/);
  assert.doesNotMatch(String(fixed.stdout), /CVE-2024-1086|CVE-2026-74753/, "the shipped kernel is past both fixes");

  // the SBOM as it was before the patch: its musl component without the pedigree
  const dir = await tempDir();
  const sbom = JSON.parse(await readFile(join(PROJECT_ROOT, "_out/minimal/minimal.cdx.json"), "utf8")) as { components: Record<string, unknown>[] };
  const unpatched = join(dir, "unpatched.cdx.json");
  await writeFile(unpatched, JSON.stringify({ ...sbom, components: sbom.components.map(({ pedigree: _, ...c }) => c) }));
  const failed = await bronze(["vuln", "scan", "--sbom", unpatched, "--advisories", ADVISORIES]);
  assert.equal(failed.exitCode, 1, String(failed.all));
  assert.match(String(failed.stdout), /^FAIL musl pkg:deb\/debian\/musl@1\.2\.3-1\?arch=source: DEBIAN-CVE-2025-26519 \(CVE-2025-26519\), high, no fixed version/m);

  // the same SBOM with the kernel set back before the fix of CVE-2026-74753 (6.12.111-1~deb12u1)
  const { sourcePackage } = await loadKernelSource(join(PROJECT_ROOT, "kernel"));
  const kernelPurl = `pkg:deb/debian/${sourcePackage}@`;
  assert.ok(sbom.components.some((c) => String(c.purl).startsWith(kernelPurl)), `the SBOM's kernel is ${kernelPurl}...`);
  const olderKernel = join(dir, "older-kernel.cdx.json");
  const older = sbom.components.map((c) => (String(c.purl).startsWith(kernelPurl) ? { ...c, purl: `${kernelPurl}6.12.107-1~deb12u1?arch=source` } : c));
  await writeFile(olderKernel, JSON.stringify({ ...sbom, components: older }));
  const kernelFinding = await bronze(["vuln", "scan", "--sbom", olderKernel, "--advisories", ADVISORIES]);
  assert.equal(kernelFinding.exitCode, 1, String(kernelFinding.all));
  assert.match(String(kernelFinding.stdout), /^FAIL linux pkg:deb\/debian\/linux-6\.12@6\.12\.107-1~deb12u1\?arch=source: DEBIAN-CVE-2026-74753 \(CVE-2026-74753\), unknown, fixed in 6\.12\.111-1~deb12u1/m);

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

test("bronze build gates an image whose profile says vulnerabilities: a high finding fails the build naming the component, the advisory and the fixed version; a passing build records the verdict and publishes its OpenVEX document", async () => {
  const dir = await tempDir();
  const advisories = join(dir, "advisories");
  await mkdir(advisories);
  for (const name of ["DEBIAN-CVE-2025-26519.json", "DEBIAN-CVE-2024-1086.json"]) await writeFile(join(advisories, name), await readFile(join(ADVISORIES, name)));
  const profile = join(dir, "vuln-gated.yaml");
  await writeFile(profile, `name: vuln-gated\nbase: minimal\noutputs: [uki, installer]\nvulnerabilities:\n  advisories: advisories\n  failOn: high\n`);
  const built = await startBuild(profile);
  assert.equal(built.exitCode, 0, built.all);
  const out = join(PROJECT_ROOT, "_out", "vuln-gated");
  const record = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as { vulnerabilities: { passed: boolean; advisories: number; fixedByPatch: { advisory: string }[] } };
  assert.equal(record.vulnerabilities.passed, true);
  assert.equal(record.vulnerabilities.advisories, 2);
  assert.deepEqual(record.vulnerabilities.fixedByPatch.map((f) => f.advisory), ["DEBIAN-CVE-2025-26519"]);
  const vex = JSON.parse(await readFile(join(out, "vuln-gated.vex.json"), "utf8")) as { "@context": string; statements: { vulnerability: { name: string }; products: { "@id": string }[]; status: string }[] };
  assert.equal(vex["@context"], "https://openvex.dev/ns/v0.2.0");
  assert.deepEqual(vex.statements.map((s) => [s.vulnerability.name, s.products[0]?.["@id"], s.status]), [["CVE-2025-26519", "pkg:deb/debian/musl@1.2.3-1?arch=source", "fixed"]]);
  const report = await readFile(join(out, "report.html"), "utf8");
  assert.match(report, /<h2>Vulnerabilities<\/h2>\n<p class="ok">Gate passed at high against 2 advisories/);
  assert.match(report, /pkg:deb\/debian\/musl@1\.2\.3-1\?arch=source<\/td><td>DEBIAN-CVE-2025-26519, CVE-2025-26519<\/td><td>high<\/td><td><\/td><td>fixed by a patch of the build/);

  // test data, not a published advisory: e2fsprogs affected, fixed in a later Debian 12 revision
  const made = { id: "TEST-2026-0002", aliases: ["CVE-2026-0002"], severity: [{ type: "CVSS_V3", score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" }], affected: [{ package: { ecosystem: "Debian:12", name: "e2fsprogs" }, ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: "1.47.0-2+deb12u9" }] }] }] };
  await writeFile(join(advisories, "TEST-2026-0002.json"), JSON.stringify(made));
  const refused = await startBuild(profile);
  assert.equal(refused.exitCode, 1, refused.all);
  assert.match(refused.all, /vulnerability gate failed for vuln-gated \(at or above high, against 3 advisories\):\n {2}e2fsprogs pkg:deb\/debian\/e2fsprogs@1\.47\.0-2\?arch=source: TEST-2026-0002 \(CVE-2026-0002\), critical, fixed in 1\.47\.0-2\+deb12u9/);
  assert.match(refused.all, /update or patch the component \(pkg\.yaml patches:\), or record a reviewed decision/);
});

test("advisories as an OCI image: pushed to a registry and scanned by digest, or pulled into a layout first; findings as SARIF", async () => {
  const dir = await tempDir();
  const files = await Promise.all(["DEBIAN-CVE-2025-26519.json", "DEBIAN-CVE-2024-1086.json"].map(async (name) => ({ path: `osv/${name}`, type: "file" as const, mode: 0o644, data: await readFile(join(ADVISORIES, name)) })));
  const image = buildImage({ platform: { architecture: "amd64", os: "linux" }, layerTar: writeTar(files, 0), created: "2026-12-02T00:00:00Z", annotations: { "org.opencontainers.image.title": "OSV advisories" } });
  await writeLayoutDir(join(dir, "feed"), layoutFiles(image.manifest, image.blobs, "2026-12-02"));
  const registry = await startRegistry();
  const ref = `${registry.address}/security/osv:2026-12-02`;
  assert.equal((await bronze(["push", join(dir, "feed"), ref, "--plain-http"])).exitCode, 0);
  const byDigest = `${registry.address}/security/osv@${image.manifest.descriptor.digest}`;
  const scanned = await bronze(["vuln", "scan", "--profile", "minimal", "--advisories", byDigest, "--plain-http"]);
  assert.equal(scanned.exitCode, 0, String(scanned.all));
  assert.match(String(scanned.stderr), new RegExp(`advisories from ${byDigest.replaceAll(".", "\\.")}$`, "m"));
  assert.match(String(scanned.stdout), /2 advisories; 0 finding\(s\) at or above high, 0 below, 1 fixed by a patch/);
  // a profile gates its builds on the feed by digest (a tag alone is refused: the verdict must trace to the data)
  const profile = join(dir, "feed-gated.yaml");
  await writeFile(profile, `name: feed-gated\nbase: minimal\noutputs: [uki, installer]\nvulnerabilities:\n  advisories: ${byDigest}\n`);
  const gated = await startBuild(profile, undefined, ["--plain-http"]);
  assert.equal(gated.exitCode, 0, gated.all);
  assert.match(gated.all, new RegExp(`advisories from ${byDigest.replaceAll(".", "\\.")}$`, "m"));
  await writeFile(profile, `name: feed-gated\nbase: minimal\noutputs: [uki, installer]\nvulnerabilities:\n  advisories: ${ref}\n`);
  const byTag = await startBuild(profile, undefined, ["--plain-http"]);
  assert.equal(byTag.exitCode, 2, byTag.all);
  assert.match(byTag.all, /a build reads its advisories pinned by digest/);
  assert.equal((await bronze(["pull", byDigest, join(dir, "pulled"), "--plain-http"])).exitCode, 0);
  const fromLayout = await bronze(["vuln", "scan", "--profile", "minimal", "--advisories", join(dir, "pulled")]);
  assert.match(String(fromLayout.stdout), /2 advisories; .* 1 fixed by a patch/, String(fromLayout.all));

  // an SBOM without musl's patch, as SARIF: one error-level result for the advisory, located at the SBOM
  const sbom = JSON.parse(await readFile(join(PROJECT_ROOT, "_out/minimal/minimal.cdx.json"), "utf8")) as { components: Record<string, unknown>[] };
  const unpatched = join(dir, "unpatched.cdx.json");
  await writeFile(unpatched, JSON.stringify({ ...sbom, components: sbom.components.map(({ pedigree: _, ...c }) => c) }));
  const sarif = await bronze(["vuln", "scan", "--sbom", unpatched, "--advisories", ADVISORIES, "--sarif"]);
  assert.equal(sarif.exitCode, 1, String(sarif.all));
  const log = JSON.parse(String(sarif.stdout)) as { version: string; runs: { tool: { driver: { rules: { id: string }[] } }; results: { ruleId: string; level: string; locations: { physicalLocation: { artifactLocation: { uri: string } } }[] }[] }[] };
  assert.equal(log.version, "2.1.0");
  assert.deepEqual(log.runs[0]?.results.map((r) => [r.ruleId, r.level, r.locations[0]?.physicalLocation.artifactLocation.uri]), [["DEBIAN-CVE-2025-26519", "error", unpatched]]);
  assert.deepEqual(log.runs[0]?.tool.driver.rules.map((r) => r.id), ["DEBIAN-CVE-2025-26519"]);
});
