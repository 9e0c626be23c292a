/**
 * The vulnerability gate: every component of an SBOM (by purl) against OSV advisories, versions compared
 * by the component's own rules, findings decided by reviewed OpenVEX statements; a statement that matches
 * no finding is stale and fails the gate, as a hardening exception that no longer applies does.
 */
import { InputError } from "../core/errors.ts";
import { SEVERITIES, type Severity } from "./cvss.ts";
import { inRange, type Advisory, type Affected } from "./osv.ts";
import { compareDebian, compareKernel, compareSemver } from "./versions.ts";
import type { VexStatement } from "./vex.ts";

/** The Debian release bronze's Debian sources are pinned from (bookworm): advisories for others do not apply. */
const DEBIAN_RELEASE = "12";

export interface Component {
  name: string;
  version: string;
  purl: string;
  /** advisories its build patched out (the SBOM's pedigree: patches resolving them) */
  patched?: string[];
}

interface Purl {
  type: string;
  namespace: string;
  name: string;
  version: string;
}

function parsePurl(purl: string): Purl | undefined {
  const match = /^pkg:([a-z0-9.+-]+)\/(?:([^/@?#]+)\/)?([^/@?#]+)(?:@([^?#]+))?/.exec(purl);
  if (!match) return undefined;
  return { type: match[1] as string, namespace: decodeURIComponent(match[2] ?? ""), name: decodeURIComponent(match[3] as string), version: decodeURIComponent(match[4] ?? "") };
}

type Json = Record<string, unknown>;

/** The components of a CycloneDX or SPDX JSON SBOM that carry a purl (what advisories can name). */
export function sbomComponents(where: string, sbom: Json): Component[] {
  if (Array.isArray(sbom.components)) {
    return (sbom.components as Json[]).filter((c) => typeof c?.purl === "string").map((c) => {
      const patches = (c.pedigree as { patches?: { resolves?: { id?: unknown }[] }[] } | undefined)?.patches;
      const patched = Array.isArray(patches) ? patches.flatMap((p) => (Array.isArray(p?.resolves) ? p.resolves.map((r) => r?.id).filter((id): id is string => typeof id === "string") : [])) : [];
      return { name: String(c.name), version: String(c.version ?? ""), purl: c.purl as string, ...(patched.length ? { patched } : {}) };
    });
  }
  if (Array.isArray(sbom.packages)) {
    return (sbom.packages as Json[]).flatMap((p) => {
      const refs = Array.isArray(p?.externalRefs) ? (p.externalRefs as Json[]) : [];
      const purl = refs.find((r) => r?.referenceType === "purl")?.referenceLocator;
      return typeof purl === "string" ? [{ name: String(p.name), version: String(p.versionInfo ?? ""), purl }] : [];
    });
  }
  throw new InputError(`${where}: neither a CycloneDX (components) nor an SPDX (packages) document`);
}

/** How an advisory's affected entry names a component, and the version order it uses; undefined when it does not. */
function matcher(affected: Affected, component: Component): { version: string; compare: (a: string, b: string) => number } | undefined {
  const purl = parsePurl(component.purl);
  if (!purl) return undefined;
  const [ecosystem, release] = affected.ecosystem.split(":");
  if (ecosystem === "Debian" && purl.type === "deb" && purl.namespace === "debian" && purl.name === affected.name) {
    return release === undefined || release === DEBIAN_RELEASE ? { version: purl.version, compare: compareDebian } : undefined;
  }
  if (ecosystem === "Linux" && purl.name === "linux" && ["kernel", "linux"].includes(affected.name.toLowerCase())) return { version: component.version, compare: compareKernel };
  return undefined;
}

export interface Finding {
  component: Component;
  advisory: Advisory;
  /** the first version the advisory says is fixed after the component's, if any */
  fixed?: string;
  /** the VEX statement that decided it, if one did */
  vex?: VexStatement;
}

/** Whether the advisory affects the component, and the first fixed version after it. */
export function affectedBy(advisory: Advisory, component: Component): { fixed?: string } | undefined {
  for (const affected of advisory.affected) {
    const how = matcher(affected, component);
    if (!how) continue;
    const compare = (a: string, b: string) => {
      try {
        return how.compare(a, b);
      } catch (e) {
        throw new InputError(`${advisory.source}: ${advisory.id}: ${(e as Error).message}`);
      }
    };
    const ranges = affected.ranges.filter((r) => r.type !== "GIT");
    const hit = affected.versions.includes(how.version) || ranges.some((r) => inRange(how.version, r.events, r.type === "SEMVER" && affected.ecosystem !== "Linux" ? compareSemver : compare));
    if (!hit) continue;
    const fixes = ranges.flatMap((r) => r.events.flatMap((e) => ("fixed" in e ? [e.fixed] : []))).filter((f) => compare(f, how.version) > 0);
    const fixed = fixes.sort(compare)[0];
    return fixed ? { fixed } : {};
  }
  return undefined;
}

const withoutVersion = (purl: string) => purl.replace(/[@?#].*$/, "");

function decides(statement: VexStatement, finding: Finding): boolean {
  const names = new Set([finding.advisory.id, ...finding.advisory.aliases]);
  if (!statement.names.some((n) => names.has(n))) return false;
  return statement.products.some((p) => p === finding.component.purl || (p === withoutVersion(p) && p === withoutVersion(finding.component.purl)));
}

export interface GateResult {
  /** findings no statement suppressed, the ones at or above the threshold failing the gate */
  findings: Finding[];
  /** what the advisories say, that a patch in the component's build resolves */
  fixedByPatch: Finding[];
  failing: Finding[];
  suppressed: Finding[];
  stale: VexStatement[];
  passed: boolean;
}

/** A finding as the verdict (--json, the build record) lists it. */
export function describeFinding(f: Finding) {
  return {
    component: f.component.purl,
    advisory: f.advisory.id,
    aliases: f.advisory.aliases,
    severity: f.advisory.severity,
    fixed: f.fixed ?? null,
    ...(f.vex ? { vex: { status: f.vex.status, reason: f.vex.reason, statement: f.vex.where } } : {}),
  };
}

/** The verdict as --json prints it and the build record keeps it. */
export function verdictRecord(result: GateResult, failOn: Severity, counts: { components: number; advisories: number }) {
  return {
    passed: result.passed,
    failOn,
    ...counts,
    findings: result.findings.map(describeFinding),
    fixedByPatch: result.fixedByPatch.map(describeFinding),
    suppressed: result.suppressed.map(describeFinding),
    stale: result.stale.map((s) => ({ statement: s.where, vulnerability: s.names[0], products: s.products })),
  };
}

/** One line a person reads for a finding that fails the gate. */
export function failingLine(f: Finding): string {
  const aka = f.advisory.aliases.length ? ` (${f.advisory.aliases.join(", ")})` : "";
  return `${f.component.name} ${f.component.purl}: ${f.advisory.id}${aka}, ${f.advisory.severity}, ${f.fixed ? `fixed in ${f.fixed}` : "no fixed version"}`;
}

/**
 * The advisories by the package name a component's purl would carry (the kernel's "Kernel" is linux):
 * a component is compared with those alone, not with every advisory.
 */
function advisoryIndex(advisories: readonly Advisory[]): Map<string, Advisory[]> {
  const index = new Map<string, Advisory[]>();
  for (const advisory of advisories) {
    const names = new Set(advisory.affected.map((a) => (a.ecosystem === "Linux" ? "linux" : a.name)));
    for (const name of names) {
      const list = index.get(name);
      if (list) list.push(advisory);
      else index.set(name, [advisory]);
    }
  }
  return index;
}

const rank = (s: Severity | "unknown") => (s === "unknown" ? SEVERITIES.length : SEVERITIES.indexOf(s));

/**
 * The gate's verdict. A finding whose severity is unknown fails at any threshold (the advisory data gives no
 * reason to let it pass); `not_affected` and `fixed` statements suppress, `affected` and
 * `under_investigation` ones only annotate.
 */
export function gate(components: readonly Component[], advisories: readonly Advisory[], statements: readonly VexStatement[], failOn: Severity): GateResult {
  const all: Finding[] = [];
  const fixedByPatch: Finding[] = [];
  const index = advisoryIndex(advisories);
  for (const component of components) {
    const name = parsePurl(component.purl)?.name ?? "";
    for (const advisory of index.get(name) ?? []) {
      const hit = affectedBy(advisory, component);
      if (!hit) continue;
      const patched = [advisory.id, ...advisory.aliases].some((id) => component.patched?.includes(id));
      (patched ? fixedByPatch : all).push({ component, advisory, ...hit });
    }
  }
  const used = new Set<VexStatement>();
  for (const finding of all) {
    const statement = statements.find((s) => decides(s, finding));
    if (statement) {
      finding.vex = statement;
      used.add(statement);
    }
  }
  const suppressed = all.filter((f) => f.vex?.status === "not_affected" || f.vex?.status === "fixed");
  const findings = all.filter((f) => !suppressed.includes(f));
  const failing = findings.filter((f) => rank(f.advisory.severity) >= rank(failOn));
  const stale = statements.filter((s) => !used.has(s));
  return { findings, fixedByPatch, failing, suppressed, stale, passed: failing.length === 0 && stale.length === 0 };
}
