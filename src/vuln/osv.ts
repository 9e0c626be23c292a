/**
 * Advisories in the OSV format (ossf.github.io/osv-schema), read offline: each checked for the fields the
 * matching relies on, a wrong one named by file and path. Ranges are evaluated as the schema defines them:
 * events in version order, `introduced` opening, `fixed` closing (that version is not affected),
 * `last_affected` closing after it, `limit` bounding from above.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { InputError } from "../core/errors.ts";
import { parseObject } from "../oci/descriptor.ts";
import { layerEntries, openLayout, readImage, type LayoutReader } from "../oci/layout-read.ts";
import { cvss3BaseScore, ratingOf, SEVERITIES, type Severity } from "./cvss.ts";

export type RangeEvent = { introduced: string } | { fixed: string } | { last_affected: string } | { limit: string };

export interface Affected {
  ecosystem: string;
  name: string;
  ranges: { type: "ECOSYSTEM" | "SEMVER" | "GIT"; events: RangeEvent[] }[];
  versions: string[];
}

export interface Advisory {
  id: string;
  aliases: string[];
  summary: string;
  severity: Severity | "unknown";
  affected: Affected[];
  /** the file it was read from */
  source: string;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function stringsAt(where: string, value: unknown, field: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) throw new InputError(`${where}: ${field} must be a list of strings`);
  return value;
}

function severityOf(where: string, record: Json): Advisory["severity"] {
  const scores = record.severity === undefined ? [] : record.severity;
  if (!Array.isArray(scores)) throw new InputError(`${where}: severity must be a list of {type, score}`);
  for (const [i, s] of scores.entries()) {
    if (!isObject(s) || typeof s.type !== "string" || typeof s.score !== "string") throw new InputError(`${where}: severity[${i}] needs a type and a score (strings)`);
    if (s.type === "CVSS_V3") {
      try {
        return ratingOf(cvss3BaseScore(s.score));
      } catch (e) {
        throw new InputError(`${where}: severity[${i}].score: ${(e as Error).message}`);
      }
    }
  }
  // the databases that give no vector often say it in words (GitHub's, and others')
  const named = isObject(record.database_specific) ? record.database_specific.severity : undefined;
  const word = typeof named === "string" ? named.toLowerCase().replace("moderate", "medium") : "";
  return (SEVERITIES as readonly string[]).includes(word) ? (word as Severity) : "unknown";
}

function eventsAt(where: string, value: unknown): RangeEvent[] {
  if (!Array.isArray(value) || value.length === 0) throw new InputError(`${where}: events must be a non-empty list`);
  return value.map((event, i) => {
    const keys = isObject(event) ? Object.keys(event) : [];
    const key = keys[0];
    if (!isObject(event) || keys.length !== 1 || !key || !["introduced", "fixed", "last_affected", "limit"].includes(key) || typeof event[key] !== "string") {
      throw new InputError(`${where}: events[${i}] must be one of {introduced|fixed|last_affected|limit: "<version>"}`);
    }
    return event as RangeEvent;
  });
}

/** One OSV record, checked; `where` names the file. */
export function parseAdvisory(where: string, record: Json): Advisory {
  if (typeof record.id !== "string" || !record.id) throw new InputError(`${where}: id must be a non-empty string`);
  if (!Array.isArray(record.affected)) throw new InputError(`${where}: affected must be a list (it may be empty)`);
  const affected = record.affected.map((a: unknown, i) => {
    const at = `${where}: affected[${i}]`;
    if (!isObject(a)) throw new InputError(`${at}: must be an object`);
    // an entry of GIT ranges alone (an upstream repository's commits) names no package
    const pkg = a.package === undefined ? { ecosystem: "", name: "" } : a.package;
    if (!isObject(pkg) || typeof pkg.ecosystem !== "string" || typeof pkg.name !== "string") {
      throw new InputError(`${at}: package must have an ecosystem and a name (strings)`);
    }
    const ranges = a.ranges === undefined ? [] : a.ranges;
    if (!Array.isArray(ranges)) throw new InputError(`${at}: ranges must be a list`);
    return {
      ecosystem: pkg.ecosystem,
      name: pkg.name,
      versions: stringsAt(at, a.versions, "versions"),
      ranges: ranges.map((r: unknown, j) => {
        if (!isObject(r) || !["ECOSYSTEM", "SEMVER", "GIT"].includes(String(r.type))) throw new InputError(`${at}: ranges[${j}].type must be ECOSYSTEM, SEMVER or GIT`);
        return { type: r.type as "ECOSYSTEM" | "SEMVER" | "GIT", events: eventsAt(`${at}: ranges[${j}]`, r.events) };
      }),
    };
  });
  return {
    id: record.id,
    aliases: stringsAt(where, record.aliases, "aliases"),
    summary: typeof record.summary === "string" ? record.summary : "",
    severity: severityOf(where, record),
    affected,
    source: where,
  };
}

/** Whether `version` falls in the range, in the order `compare` gives (OSV's evaluation). */
export function inRange(version: string, events: readonly RangeEvent[], compare: (a: string, b: string) => number): boolean {
  const at = (e: RangeEvent) => Object.values(e)[0] as string;
  const position = (v: string) => (v === "0" ? -Infinity : 0);
  const sorted = [...events].sort((a, b) => {
    const [x, y] = [at(a), at(b)];
    return position(x) - position(y) || (x === "0" || y === "0" ? 0 : compare(x, y));
  });
  let affected = false;
  for (const event of sorted) {
    if ("introduced" in event && (event.introduced === "0" || compare(event.introduced, version) <= 0)) affected = true;
    else if ("fixed" in event && compare(event.fixed, version) <= 0) affected = false;
    else if ("last_affected" in event && compare(event.last_affected, version) < 0) affected = false;
  }
  const limits = events.filter((e): e is { limit: string } => "limit" in e);
  return affected && limits.every((l) => l.limit === "*" || compare(version, l.limit) < 0);
}

/** The advisories of an OCI image's layers (an advisory feed published as an image): its .json files. */
export async function advisoryImage(layout: LayoutReader): Promise<Advisory[]> {
  const entries = await layerEntries(layout, await readImage(layout));
  return advisoriesIn(entries.filter((e) => e.type === "file" && e.path.endsWith(".json")).map((e) => ({ path: `${layout.source}:${e.path}`, data: e.data ?? Buffer.alloc(0) })));
}

const advisoriesIn = (files: readonly { path: string; data: Buffer }[]) => files.map((f) => parseAdvisory(f.path, parseObject(f.path, f.data)));

/**
 * Every advisory in a directory (its .json files, at any depth), a tar of one, one file, or an OCI layout
 * (directory or tar, as `bronze pull` writes it) of an advisory image.
 */
export async function readAdvisories(source: string): Promise<Advisory[]> {
  const info = await stat(source).catch(() => {
    throw new InputError(`advisories ${source}: no such file or directory; give a directory of OSV .json files, a tar of one, one file, an OCI layout of an advisory image, or HOST/REPO@sha256:DIGEST of one in a registry`);
  });
  const layout = await openLayout(source).catch(() => undefined);
  if (layout) return advisoryImage(layout);
  const files: { path: string; data: Buffer }[] = [];
  if (info.isDirectory()) {
    const visit = async (dir: string): Promise<void> => {
      for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await visit(path);
        else if (entry.name.endsWith(".json")) files.push({ path, data: await readFile(path) });
      }
    };
    await visit(source);
  } else if (source.endsWith(".tar")) {
    const { readTar } = await import("../oci/tar-read.ts");
    const entries = await readTar(await readFile(source)).catch((e: unknown) => {
      throw new InputError(`--advisories ${source}: not a tar (${(e as Error).message})`);
    });
    for (const e of entries) if (e.type === "file" && e.path.endsWith(".json")) files.push({ path: `${source}:${e.path}`, data: e.data ?? Buffer.alloc(0) });
  } else {
    files.push({ path: source, data: await readFile(source) });
  }
  return advisoriesIn(files);
}
