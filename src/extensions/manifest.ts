import { FieldReader, YamlFile } from "../core/yamlfile.ts";
import { InputError } from "../core/errors.ts";

/** manifest.yaml of a system extension, in Talos's format (compatibility names bronze). */
export interface ExtensionManifest {
  name: string;
  version: string;
  author: string;
  description: string;
  /** e.g. ">= 0.1.0, < 2.0.0"; empty for a Talos-built extension */
  compatibility: string;
  /** a Talos-built extension's Talos version constraint (read only where an operator admits such images) */
  talos?: string;
}

const NAME = /^[a-z0-9][a-z0-9-]*$/;

/** `talos`: a manifest whose compatibility names Talos alone is read (and marked so) instead of refused. */
export function parseExtensionManifest(where: string, text: string, options: { talos?: boolean } = {}): ExtensionManifest {
  const yaml = YamlFile.parse(where, text);
  const f = new FieldReader(yaml);
  const top = f.mapping(yaml.data, []);
  f.onlyKeys(top, [], ["version", "metadata"]);
  if (top.version !== "v1alpha1") throw yaml.error(["version"], `version must be v1alpha1 (the Talos system extension format), not '${String(top.version)}'`);
  const meta = f.mapping(top.metadata, ["metadata"]);
  f.onlyKeys(meta, ["metadata"], ["name", "version", "author", "description", "compatibility"]);
  const compatibility = f.mapping(meta.compatibility, ["metadata", "compatibility"]);
  const about = {
    name: f.string(meta.name, ["metadata", "name"], NAME, "lowercase letters, digits and '-'"),
    version: f.string(meta.version, ["metadata", "version"]),
    author: f.string(meta.author, ["metadata", "author"]),
    description: f.optionalString(meta.description, ["metadata", "description"]) ?? "",
  };
  if ("talos" in compatibility && !("bronze" in compatibility)) {
    if (!options.talos) throw yaml.error(["metadata", "compatibility", "talos"], "compatibility names talos; for bronze write compatibility: {bronze: {version: \">= X.Y.Z\"}} (a Talos-built image without kernel modules can be admitted by name: a profile's talosExtensions)");
    f.onlyKeys(compatibility, ["metadata", "compatibility"], ["talos"]);
    const talos = f.mapping(compatibility.talos, ["metadata", "compatibility", "talos"]);
    return { ...about, compatibility: "", talos: f.string(talos.version, ["metadata", "compatibility", "talos", "version"]) };
  }
  f.onlyKeys(compatibility, ["metadata", "compatibility"], ["bronze"]);
  const bronze = f.mapping(compatibility.bronze, ["metadata", "compatibility", "bronze"]);
  f.onlyKeys(bronze, ["metadata", "compatibility", "bronze"], ["version"]);
  const constraint = f.string(bronze.version, ["metadata", "compatibility", "bronze", "version"]);
  try {
    parseConstraint(constraint);
  } catch (e) {
    throw yaml.error(["metadata", "compatibility", "bronze", "version"], (e as Error).message);
  }
  return { ...about, compatibility: constraint };
}

type Version = [number, number, number];
const COMPARATOR = /^(>=|<=|==|=|>|<)\s*v?(\d+)\.(\d+)\.(\d+)$/;

function parseVersion(text: string): Version {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!m) throw new InputError(`'${text}' is not a version (X.Y.Z)`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function parseConstraint(constraint: string): { op: string; version: Version }[] {
  const parts = constraint.split(",").map((p) => p.trim()).filter(Boolean);
  if (!parts.length) throw new Error("empty version constraint");
  return parts.map((part) => {
    const m = COMPARATOR.exec(part);
    if (!m) throw new Error(`'${part}' is not a version constraint; write e.g. ">= 0.1.0" or ">= 0.1.0, < 1.0.0"`);
    return { op: m[1] ?? "", version: [Number(m[2]), Number(m[3]), Number(m[4])] };
  });
}

function compare(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

/** Whether an OS version satisfies every comparator of a constraint. */
export function satisfies(osVersion: string, constraint: string): boolean {
  const version = parseVersion(osVersion);
  return parseConstraint(constraint).every(({ op, version: wanted }) => {
    const c = compare(version, wanted);
    return op === ">=" ? c >= 0 : op === "<=" ? c <= 0 : op === ">" ? c > 0 : op === "<" ? c < 0 : c === 0;
  });
}
