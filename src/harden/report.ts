import type { CheckResult } from "./engine.ts";
import { mainOption } from "./rule-model.ts";

/** One result in upstream's JSON schema (kernel-hardening-checker --mode json), keys in upstream's order. */
export interface UpstreamJsonResult {
  option_name: string;
  type: string;
  reason: string;
  decision: string;
  desired_val: string;
  check_result: string;
  check_result_bool: boolean;
}

export function toUpstreamJson(result: CheckResult): UpstreamJsonResult {
  const option = mainOption(result.check);
  return {
    option_name: option.name,
    type: option.type,
    reason: option.reason,
    decision: option.decision,
    desired_val: option.expected,
    check_result: result.result,
    check_result_bool: result.ok,
  };
}

/**
 * The results as upstream prints them with --mode json: Python's json.dumps layout (", " and
 * ": " separators, non-ASCII escaped), so a byte comparison with upstream's output holds.
 */
export function upstreamJsonText(results: readonly UpstreamJsonResult[]): string {
  const items = results.map((r) => {
    const fields = Object.entries(r).map(([k, v]) => `${pythonString(k)}: ${typeof v === "boolean" ? String(v) : pythonString(v)}`);
    return `{${fields.join(", ")}}`;
  });
  return `[${items.join(", ")}]\n`;
}

const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f" };

/** A JSON string as Python's json.dumps writes it with ensure_ascii: printable ASCII as is, the rest as \uXXXX. */
export function pythonString(text: string): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    const code = text.charCodeAt(i);
    const short = SHORT_ESCAPES[ch];
    if (short) out += short;
    else if (code >= 0x20 && code <= 0x7e) out += ch;
    else out += `\\u${code.toString(16).padStart(4, "0")}`;
  }
  return `${out}"`;
}

export interface Tally {
  checks: number;
  ok: number;
  fail: number;
}

export function tally(results: readonly UpstreamJsonResult[]): Tally {
  const ok = results.filter((r) => r.check_result_bool).length;
  return { checks: results.length, ok, fail: results.length - ok };
}

/** A plain table for people: option, type, reason, decision, wanted value, result. */
export function resultTable(results: readonly UpstreamJsonResult[]): string {
  const rows = results.map((j) => [j.option_name, j.type, j.reason, j.decision, j.desired_val, j.check_result]);
  const header = ["option", "type", "reason", "decision", "wanted", "result"];
  const widths = header.map((h, i) => Math.min(44, Math.max(h.length, ...rows.map((row) => (row[i] as string).length))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
