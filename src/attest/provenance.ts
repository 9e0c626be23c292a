/**
 * SLSA Provenance v1 of an installer, made from its build record (the manifest.json the installer carries):
 * every source and patch digest, each package's and the kernel's input key, each extension's digest, the toolchain's
 * versions and the git commit. Pure: the same record, the same predicate.
 */
import { InputError } from "../core/errors.ts";

export const PROVENANCE_PREDICATE = "https://slsa.dev/provenance/v1";
export const SPDX_PREDICATE = "https://spdx.dev/Document";
export const CYCLONEDX_PREDICATE = "https://cyclonedx.org/bom";
const BUILD_TYPE = "urn:bronze:build:v1";
const BUILDER_ID = "urn:bronze:builder";

/** A dependency the build resolved, as SLSA's ResourceDescriptor names it. */
export interface Material {
  name: string;
  digest: Record<string, string>;
}

interface BuildRecord {
  profile: string;
  profileId: string;
  version: string;
  sourceDateEpoch: number;
  cmdline: string;
  revision?: string;
  toolchain?: Record<string, string>;
  kernel: { version: string; sourceSha256: string; key?: string };
  packages: { name: string; version: string; key: string; sources: { what: string; digest: string }[]; patches?: { file: string; sha256: string }[] }[];
  extensions?: { name: string; version: string; digest?: string; layer: { sha256: string } }[];
}

function asRecord(where: string, value: Record<string, unknown>): BuildRecord {
  const record = value as unknown as BuildRecord;
  const wrong = (field: string) => new InputError(`${where}: ${field} is missing or of the wrong kind; give the manifest.json of a bronze build`);
  if (typeof record.profile !== "string" || typeof record.version !== "string") throw wrong("profile or version");
  if (!record.kernel || typeof record.kernel.sourceSha256 !== "string") throw wrong("kernel.sourceSha256");
  if (!Array.isArray(record.packages) || !record.packages.every((p) => typeof p?.key === "string" && Array.isArray(p.sources))) throw wrong("packages (each with key and sources)");
  return record;
}

/** What the build of this record resolved: its commit, the kernel, every package and its sources, every extension. */
export function materialsOf(where: string, value: Record<string, unknown>): Material[] {
  const record = asRecord(where, value);
  return [
    ...(record.revision ? [{ name: "bronze source tree (git)", digest: { gitCommit: record.revision } }] : []),
    { name: `kernel ${record.kernel.version} source`, digest: { sha256: record.kernel.sourceSha256 } },
    ...(record.kernel.key ? [{ name: `kernel ${record.kernel.version} input key`, digest: { sha256: record.kernel.key } }] : []),
    ...record.packages.flatMap((p) => [
      { name: `package ${p.name} ${p.version} input key`, digest: { sha256: p.key } },
      ...p.sources.map((s) => ({ name: `package ${p.name} ${p.version} source ${s.what}`, digest: { sha256: s.digest } })),
      ...(p.patches ?? []).map((x) => ({ name: `package ${p.name} ${p.version} patch ${x.file}`, digest: { sha256: x.sha256 } })),
    ]),
    ...(record.extensions ?? []).map((e) => ({ name: `extension ${e.name} ${e.version}`, digest: { sha256: (e.digest ?? `sha256:${e.layer.sha256}`).replace(/^sha256:/, "") } })),
  ];
}

/** The provenance predicate of an installer built from this record. */
export function provenancePredicate(where: string, value: Record<string, unknown>): Record<string, unknown> {
  const record = asRecord(where, value);
  return {
    buildDefinition: {
      buildType: BUILD_TYPE,
      externalParameters: { profile: record.profile, profileId: record.profileId, version: record.version, cmdline: record.cmdline, sourceDateEpoch: record.sourceDateEpoch },
      internalParameters: { toolchain: record.toolchain ?? {} },
      resolvedDependencies: materialsOf(where, value),
    },
    runDetails: { builder: { id: BUILDER_ID }, metadata: {} },
  };
}

/** One platform image's build record, as its installer layer carries it. */
export interface PlatformRecord {
  architecture: string;
  where: string;
  value: Record<string, unknown>;
}

/**
 * The provenance predicate of an installer index over several platforms, from each one's build record:
 * the release's profile and version, each platform's profile ID and command line, and every platform's
 * materials, named with its architecture. One platform gives provenancePredicate's predicate.
 */
export function platformsProvenance(records: readonly PlatformRecord[]): Record<string, unknown> {
  const [only] = records;
  if (!only) throw new InputError("an installer without a build record has no provenance");
  if (records.length === 1) return provenancePredicate(only.where, only.value);
  const parsed = records.map((r) => ({ ...r, record: asRecord(r.where, r.value) }));
  const first = parsed[0] as (typeof parsed)[number];
  return {
    buildDefinition: {
      buildType: BUILD_TYPE,
      externalParameters: {
        profile: first.record.profile,
        version: first.record.version,
        sourceDateEpoch: first.record.sourceDateEpoch,
        platforms: parsed.map((p) => ({ architecture: p.architecture, profileId: p.record.profileId, cmdline: p.record.cmdline })),
      },
      internalParameters: { toolchains: Object.fromEntries(parsed.map((p) => [p.architecture, p.record.toolchain ?? {}])) },
      resolvedDependencies: parsed.flatMap((p) => materialsOf(p.where, p.value).map((m) => ({ ...m, name: `${p.architecture}: ${m.name}` }))),
    },
    runDetails: { builder: { id: BUILDER_ID }, metadata: {} },
  };
}

/** The materials a provenance predicate lists, checked for the shape SLSA gives them. */
export function materialsIn(where: string, predicate: unknown): Material[] {
  const deps = (predicate as { buildDefinition?: { resolvedDependencies?: unknown } } | undefined)?.buildDefinition?.resolvedDependencies;
  if (!Array.isArray(deps)) throw new InputError(`${where}: buildDefinition.resolvedDependencies must be a list`);
  return deps.map((d: unknown, i) => {
    const m = d as Partial<Material> | null;
    if (!m || typeof m.name !== "string" || !m.digest || typeof m.digest !== "object") throw new InputError(`${where}: resolvedDependencies[${i}] needs a name and a digest`);
    return { name: m.name, digest: m.digest };
  });
}
