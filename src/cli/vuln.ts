import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Option, type Command } from "commander";
import { InputError } from "../core/errors.ts";
import type { CliEnv } from "./commands.ts";
import { connect, connectionOptions, type ConnectionOptions } from "./oci.ts";

interface ScanOptions extends ConnectionOptions {
  sbom?: string;
  profile?: string;
  advisories: string;
  vex?: string;
  failOn: "none" | "low" | "medium" | "high" | "critical";
  json?: boolean;
  sarif?: boolean;
}

/** `bronze vuln scan`: the vulnerability gate on an image's SBOM. */
export function registerVulnCommands(program: Command, { projectRoot }: CliEnv): void {
  const vuln = program.command("vuln").description("vulnerabilities of an image, from its SBOM");
  connectionOptions(vuln.command("scan"))
    .description("match every SBOM component (purl) against OSV advisories read offline, versions compared by the component's rules (Debian's, the kernel's, SEMVER); OpenVEX statements decide findings, a statement matching none is stale; exit 1 when a finding at or above --fail-on is left or a statement is stale")
    .option("--sbom <file>", "a CycloneDX or SPDX JSON SBOM")
    .option("--profile <name>", "the SBOM of the last build of this profile (_out/<name>/<name>.cdx.json)")
    .requiredOption("--advisories <source>", "OSV advisories: a directory of .json files (at any depth), a tar of one, one file, an OCI layout of an advisory image, or HOST/REPO@sha256:DIGEST of one in a registry")
    .option("--vex <file>", "OpenVEX document of reviewed decisions")
    .addOption(new Option("--fail-on <severity>", "the lowest severity that fails the gate (a finding of unknown severity always does)").choices(["none", "low", "medium", "high", "critical"]).default("high"))
    .option("--json", "the verdict as JSON")
    .option("--sarif", "the findings as a SARIF 2.1.0 log (suppressed ones marked), for code-scanning dashboards")
    .action(async (opts: ScanOptions) => {
      if (Boolean(opts.sbom) === Boolean(opts.profile)) throw new InputError("give --sbom FILE or --profile NAME (one of them)");
      if (opts.json && opts.sarif) throw new InputError("--json and --sarif exclude each other: give one");
      const { evaluateGate } = await import("../vuln/build-gate.ts");
      const { failingLine, verdictRecord } = await import("../vuln/scan.ts");
      const sbomPath = opts.sbom ?? join(projectRoot, "_out", opts.profile ?? "", `${opts.profile ?? ""}.cdx.json`);
      const sbomBytes = await readFile(sbomPath).catch(() => {
        throw new InputError(`${sbomPath}: cannot read the SBOM${opts.profile ? `; build the profile first (bronze build --profile ${opts.profile})` : ""}`);
      });
      const policy = { advisories: opts.advisories, failOn: opts.failOn, ...(opts.vex ? { vex: opts.vex } : {}) };
      const { components, advisories, result } = await evaluateGate(policy, [{ name: sbomPath, data: sbomBytes }], (ref) => connect(ref, opts), (line) => console.error(`bronze: ${line}`), false);
      if (opts.sarif) {
        const { sarifLog } = await import("../vuln/sarif.ts");
        const { packageVersion } = await import("../core/version.ts");
        console.log(sarifLog(result, sbomPath, packageVersion(projectRoot)));
      } else if (opts.json) {
        console.log(JSON.stringify(verdictRecord(result, opts.failOn, { components: components.length, advisories: advisories.length }), null, 2));
      } else {
        for (const f of result.findings) {
          const note = f.vex ? `; VEX ${f.vex.status}: ${f.vex.reason}` : "";
          console.log(`${result.failing.includes(f) ? "FAIL" : "note"} ${failingLine(f)}${note}${f.advisory.summary ? ` - ${f.advisory.summary}` : ""}`);
        }
        for (const f of result.fixedByPatch) console.log(`fixed ${f.component.name} ${f.component.purl}: ${f.advisory.id}, by a patch of its build (the SBOM's pedigree)`);
        for (const f of result.suppressed) console.log(`suppressed ${f.component.name} ${f.component.purl}: ${f.advisory.id}, by ${f.vex?.where ?? ""} (${f.vex?.status ?? ""}: ${f.vex?.reason ?? ""})`);
        for (const s of result.stale) console.log(`STALE ${s.where}: ${s.names[0] ?? ""} for ${s.products.join(", ")} matches no finding; remove the statement (or the advisory data changed)`);
        console.log(`vulnerability gate ${result.passed ? "passed" : "FAILED"}: ${components.length} components, ${advisories.length} advisories; ${result.failing.length} finding(s) at or above ${opts.failOn}, ${result.findings.length - result.failing.length} below, ${result.fixedByPatch.length} fixed by a patch, ${result.suppressed.length} suppressed by VEX, ${result.stale.length} stale statement(s)`);
      }
      if (!result.passed) process.exitCode = 1;
    });
}
