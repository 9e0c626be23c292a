/** The gate's findings as a SARIF 2.1.0 log, for code-scanning dashboards; pure. */
import type { GateResult } from "./scan.ts";

const LEVEL = { critical: "error", high: "error", unknown: "error", medium: "warning", low: "note", none: "note" } as const;

export function sarifLog(result: GateResult, sbom: string, version: string): string {
  const listed = [...result.findings, ...result.suppressed];
  const rules = [...new Map(listed.map((f) => [f.advisory.id, f.advisory])).values()].map((a) => ({
    id: a.id,
    shortDescription: { text: a.summary || a.id },
    properties: { tags: ["security", ...a.aliases], severity: a.severity },
  }));
  const results = listed.map((f) => ({
    ruleId: f.advisory.id,
    level: LEVEL[f.advisory.severity],
    message: { text: `${f.component.name} ${f.component.purl}: ${f.advisory.id}, ${f.advisory.severity}, ${f.fixed ? `fixed in ${f.fixed}` : "no fixed version"}` },
    locations: [{ physicalLocation: { artifactLocation: { uri: sbom } }, logicalLocations: [{ fullyQualifiedName: f.component.purl, kind: "package" }] }],
    ...(f.vex && result.suppressed.includes(f) ? { suppressions: [{ kind: "external", status: "accepted", justification: `${f.vex.where}: ${f.vex.reason}` }] } : {}),
  }));
  return JSON.stringify({ $schema: "https://json.schemastore.org/sarif-2.1.0.json", version: "2.1.0", runs: [{ tool: { driver: { name: "bronze vuln scan", version, rules } }, results }] }, null, 2);
}
