/**
 * OpenVEX documents (openvex.dev, v0.2.0): statements about a vulnerability in products, each a reviewed
 * decision. `not_affected` needs a justification from the specification's list and an impact statement;
 * `affected` needs an action statement.
 */
import { readFile } from "node:fs/promises";
import { InputError } from "../core/errors.ts";
import { parseObject } from "../oci/descriptor.ts";

export const JUSTIFICATIONS = [
  "component_not_present",
  "vulnerable_code_not_present",
  "vulnerable_code_not_in_execute_path",
  "vulnerable_code_cannot_be_controlled_by_adversary",
  "inline_mitigations_already_exist",
] as const;

export type VexStatus = "not_affected" | "affected" | "fixed" | "under_investigation";

export interface VexStatement {
  /** the vulnerability's name and aliases (CVE-…, GHSA-…, an OSV id) */
  names: string[];
  /** product identifiers (purls); a purl without version or qualifiers stands for every version */
  products: string[];
  status: VexStatus;
  justification?: string;
  /** what a person reads: the justification and impact, the action, or the notes */
  reason: string;
  /** the statement's own text: its impact statement, action statement or notes */
  text: string;
  /** file and index, for messages */
  where: string;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

export function parseVex(where: string, doc: Json): VexStatement[] {
  if (typeof doc["@context"] !== "string" || !doc["@context"].startsWith("https://openvex.dev/ns")) throw new InputError(`${where}: @context must be an OpenVEX context (https://openvex.dev/ns/v0.2.0)`);
  if (!Array.isArray(doc.statements)) throw new InputError(`${where}: statements must be a list`);
  return doc.statements.map((s: unknown, i) => {
    const at = `${where}: statements[${i}]`;
    if (!isObject(s)) throw new InputError(`${at}: must be an object`);
    const vulnerability = s.vulnerability;
    const name = isObject(vulnerability) ? vulnerability.name : vulnerability;
    if (typeof name !== "string" || !name) throw new InputError(`${at}: vulnerability.name must name the vulnerability (CVE-…)`);
    const aliases = isObject(vulnerability) && Array.isArray(vulnerability.aliases) ? vulnerability.aliases.filter((a): a is string => typeof a === "string") : [];
    if (!Array.isArray(s.products) || s.products.length === 0) throw new InputError(`${at}: products must list at least one product`);
    const products = s.products.map((p: unknown, j) => {
      const id = isObject(p) ? p["@id"] : p;
      if (typeof id !== "string" || !id.startsWith("pkg:")) throw new InputError(`${at}: products[${j}]["@id"] must be a purl (pkg:…)`);
      return id;
    });
    const status = s.status;
    if (status !== "not_affected" && status !== "affected" && status !== "fixed" && status !== "under_investigation") {
      throw new InputError(`${at}: status must be not_affected, affected, fixed or under_investigation`);
    }
    const text = (field: string) => (typeof s[field] === "string" && (s[field] as string).trim() ? (s[field] as string) : undefined);
    let reason = text("status_notes") ?? "";
    if (status === "not_affected") {
      const justification = s.justification;
      if (typeof justification !== "string" || !(JUSTIFICATIONS as readonly string[]).includes(justification)) {
        throw new InputError(`${at}: not_affected needs a justification, one of ${JUSTIFICATIONS.join(", ")}`);
      }
      const impact = text("impact_statement");
      if (!impact) throw new InputError(`${at}: not_affected needs an impact_statement saying why the product is not affected`);
      return { names: [name, ...aliases], products, status, justification, reason: `${justification}: ${impact}`, text: impact, where: at };
    }
    if (status === "affected") {
      const action = text("action_statement");
      if (!action) throw new InputError(`${at}: affected needs an action_statement saying what is done about it`);
      reason = action;
    }
    return { names: [name, ...aliases], products, status, reason, text: reason, where: at };
  });
}

export async function readVex(path: string): Promise<VexStatement[]> {
  const data = await readFile(path).catch(() => {
    throw new InputError(`--vex ${path}: cannot read it; give an OpenVEX document (JSON)`);
  });
  return parseVex(path, parseObject(path, data));
}

/** What an image's published OpenVEX document states: one decided vulnerability of one product. */
export interface VexClaim {
  vulnerability: string;
  aliases: string[];
  product: string;
  status: VexStatus;
  justification?: string;
  /** the impact statement (not_affected), the action statement (affected) or a note */
  text: string;
}

/** An OpenVEX v0.2.0 document; pure: the same claims and time, the same bytes. */
export function openVexDocument(id: string, timestamp: string, claims: readonly VexClaim[]): Buffer {
  const statements = claims.map((c) => ({
    vulnerability: { name: c.vulnerability, ...(c.aliases.length ? { aliases: c.aliases } : {}) },
    products: [{ "@id": c.product }],
    status: c.status,
    ...(c.status === "not_affected" ? { justification: c.justification, impact_statement: c.text } : c.status === "affected" ? { action_statement: c.text } : { status_notes: c.text }),
  }));
  return Buffer.from(`${JSON.stringify({ "@context": "https://openvex.dev/ns/v0.2.0", "@id": id, author: "bronze build", timestamp, version: 1, statements }, null, 2)}\n`);
}
