import { BronzeError } from "../core/errors.ts";
import { parseObject } from "../oci/descriptor.ts";
import type { VulnerabilityPolicy } from "../profile/profile.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { Reference } from "../registry/reference.ts";
import { loadAdvisories } from "./feed.ts";
import type { Advisory } from "./osv.ts";
import { failingLine, gate, sbomComponents, verdictRecord, type Component, type Finding, type GateResult } from "./scan.ts";
import { openVexDocument, readVex, type VexClaim } from "./vex.ts";

/** The gate's verdict for the build record, and the image's OpenVEX document of what was decided. */
export interface VulnerabilityOutcome {
  record: ReturnType<typeof verdictRecord>;
  vex: Buffer;
}

function claimOf(f: Finding): VexClaim {
  const base = { vulnerability: f.advisory.aliases[0] ?? f.advisory.id, aliases: [f.advisory.id, ...f.advisory.aliases.slice(1)], product: f.component.purl };
  if (!f.vex) return { ...base, status: "fixed", text: "patched in the build: the component's SBOM pedigree names the patch that resolves it" };
  return { ...base, status: f.vex.status, ...(f.vex.justification ? { justification: f.vex.justification } : {}), text: f.vex.text };
}

/** What the gate was given and what it found: the components (one per purl), the advisories, the verdict. */
export interface Evaluation {
  components: Component[];
  advisories: Advisory[];
  result: GateResult;
}

/**
 * The gate on SBOMs (CycloneDX or SPDX JSON): their components against the policy's advisories and VEX
 * statements. The CLI prints it; a build refuses on it (vulnerabilityGate). `pinned`: a registry feed only by digest.
 */
export async function evaluateGate(
  policy: VulnerabilityPolicy,
  sboms: readonly { name: string; data: Buffer }[],
  connect: ((ref: Reference) => Promise<RegistryClient>) | undefined,
  log: (line: string) => void,
  pinned: boolean,
): Promise<Evaluation> {
  const byPurl = new Map<string, Component>();
  for (const sbom of sboms) for (const c of sbomComponents(sbom.name, parseObject(sbom.name, sbom.data))) byPurl.set(c.purl, c);
  const components = [...byPurl.values()];
  const advisories = await loadAdvisories(policy.advisories, connect, log, pinned);
  const statements = policy.vex ? await readVex(policy.vex) : [];
  return { components, advisories, result: gate(components, advisories, statements, policy.failOn) };
}

/**
 * The build's vulnerability gate on the image's SBOMs (the base's and its extensions'): refuses the image,
 * naming each failing component, advisory and fixed version and each stale statement, or returns the verdict.
 */
export async function vulnerabilityGate(
  policy: VulnerabilityPolicy,
  sboms: readonly { name: string; data: Buffer }[],
  image: { name: string; version: string; timestamp: string },
  connect?: (ref: Reference) => Promise<RegistryClient>,
): Promise<VulnerabilityOutcome> {
  const { components, advisories, result } = await evaluateGate(policy, sboms, connect, (line) => console.log(`bronze: ${line}`), true);
  if (!result.passed) {
    const lines = [
      ...result.failing.map((f) => `  ${failingLine(f)}`),
      ...result.stale.map((s) => `  stale: ${s.where}: ${s.names[0] ?? ""} for ${s.products.join(", ")} matches no finding; remove it`),
    ];
    const fix = `update or patch the component (pkg.yaml patches:), or record a reviewed decision in ${policy.vex ?? "an OpenVEX file (vulnerabilities.vex)"}`;
    throw new BronzeError(`vulnerability gate failed for ${image.name} (at or above ${policy.failOn}, against ${advisories.length} advisories):\n${lines.join("\n")}\n${fix}`);
  }
  const decided = [...result.fixedByPatch, ...result.suppressed, ...result.findings.filter((f) => f.vex?.status === "affected")];
  return {
    record: verdictRecord(result, policy.failOn, { components: components.length, advisories: advisories.length }),
    vex: openVexDocument(`urn:bronze:vex:${image.name}:${image.version}`, image.timestamp, decided.map(claimOf)),
  };
}
