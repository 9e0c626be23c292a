/** CVSS v3.0/v3.1 base scores from their vectors (FIRST's specification, section 7), and the rating names. */
import { InputError } from "../core/errors.ts";

const WEIGHTS = {
  AV: { N: 0.85, A: 0.62, L: 0.55, P: 0.2 },
  AC: { L: 0.77, H: 0.44 },
  UI: { N: 0.85, R: 0.62 },
  CIA: { H: 0.56, L: 0.22, N: 0 },
} as const;

/** Rounds up to one decimal as the specification's Roundup does (free of floating-point surprises). */
function roundUp(value: number): number {
  const integer = Math.round(value * 100000);
  return integer % 10000 === 0 ? integer / 100000 : (Math.floor(integer / 10000) + 1) / 10;
}

/** The base score of a CVSS:3.x vector such as CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H. */
export function cvss3BaseScore(vector: string): number {
  const metrics = new Map(vector.split("/").slice(1).map((part) => part.split(":") as [string, string]));
  const get = (name: string) => {
    const value = metrics.get(name);
    if (!value) throw new InputError(`CVSS vector '${vector}' lacks ${name}`);
    return value;
  };
  if (!/^CVSS:3\.[01]\//.test(vector)) throw new InputError(`'${vector}' is not a CVSS:3.0 or 3.1 vector`);
  const scope = get("S");
  const pick = <T extends Record<string, number>>(table: T, name: string): number => {
    const weight = table[get(name)];
    if (weight === undefined) throw new InputError(`CVSS vector '${vector}': ${name}:${get(name)} is not a value of ${name}`);
    return weight;
  };
  const privileges = { N: 0.85, L: scope === "C" ? 0.68 : 0.62, H: scope === "C" ? 0.5 : 0.27 };
  const iss = 1 - (1 - pick(WEIGHTS.CIA, "C")) * (1 - pick(WEIGHTS.CIA, "I")) * (1 - pick(WEIGHTS.CIA, "A"));
  const impact = scope === "C" ? 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 : 6.42 * iss;
  const exploitability = 8.22 * pick(WEIGHTS.AV, "AV") * pick(WEIGHTS.AC, "AC") * pick(privileges, "PR") * pick(WEIGHTS.UI, "UI");
  if (impact <= 0) return 0;
  return scope === "C" ? roundUp(Math.min(1.08 * (impact + exploitability), 10)) : roundUp(Math.min(impact + exploitability, 10));
}

export const SEVERITIES = ["none", "low", "medium", "high", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

export function ratingOf(score: number): Severity {
  return score === 0 ? "none" : score < 4 ? "low" : score < 7 ? "medium" : score < 9 ? "high" : "critical";
}
