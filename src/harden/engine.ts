import type { Version } from "./inputs.ts";
import type { Arch } from "./arches.ts";
import { mainOption, type Check, type CompoundCheck, type OptionCheck, type OptionType, type Rule } from "./rule-model.ts";
import { CMDLINE_RULES, KCONFIG_RULES, SYSCTL_RULES } from "./rules.ts";

/** What one run checks: any of a kernel config, a command line, sysctl values. */
export interface CheckInput {
  /** needed with kconfig; sysctl checks without it are the arch-independent ones */
  arch?: Arch;
  /** the kernel version; needed with kconfig */
  version?: Version;
  kconfig?: ReadonlyMap<string, string>;
  cmdline?: ReadonlyMap<string, string>;
  sysctl?: ReadonlyMap<string, string>;
}

export interface CheckResult {
  check: OptionCheck | CompoundCheck;
  /** upstream's result text: "OK", "OK: ...", "FAIL: ..." */
  result: string;
  ok: boolean;
}

export interface CheckRun {
  results: CheckResult[];
  /** checks left out for want of an input, as upstream warns */
  warnings: string[];
}

/** Options whose wanted value "MAX" is the kernel config's own maximum, and the option that holds it. */
const REFINED_FROM_CONFIG: readonly { type: OptionType; target: string; source: string }[] = [
  { type: "kconfig", target: "CONFIG_ARCH_MMAP_RND_BITS", source: "CONFIG_ARCH_MMAP_RND_BITS_MAX" },
  { type: "kconfig", target: "CONFIG_ARCH_MMAP_RND_COMPAT_BITS", source: "CONFIG_ARCH_MMAP_RND_COMPAT_BITS_MAX" },
  { type: "sysctl", target: "vm.mmap_rnd_bits", source: "CONFIG_ARCH_MMAP_RND_BITS_MAX" },
  { type: "sysctl", target: "vm.mmap_rnd_compat_bits", source: "CONFIG_ARCH_MMAP_RND_COMPAT_BITS_MAX" },
];

/** Runs every check that applies to the inputs given, in upstream's order: kconfig, cmdline, sysctl. */
export function runChecks(input: CheckInput): CheckRun {
  if ((input.kconfig || input.cmdline) && (!input.arch || !input.version)) {
    throw new Error("internal: kconfig and cmdline checks need the arch and the kernel version");
  }
  if (input.cmdline && !input.kconfig) throw new Error("internal: cmdline checks need the kernel config");
  const applies = (rule: Rule) => (rule.arches ? input.arch !== undefined && rule.arches.includes(input.arch) : true);
  let checks: (OptionCheck | CompoundCheck)[] = [
    ...(input.kconfig ? KCONFIG_RULES : []),
    ...(input.cmdline ? CMDLINE_RULES : []),
    ...(input.sysctl ? SYSCTL_RULES : []),
  ]
    .filter(applies)
    .map((r) => r.check);

  const warnings: string[] = [];
  for (const { type, target, source } of REFINED_FROM_CONFIG) {
    if (!(type === "kconfig" ? input.kconfig : input.sysctl)) continue;
    const max = input.kconfig?.get(source);
    if (max) {
      checks = checks.map((c) => withExpected(c, target, max));
    } else {
      warnings.push(`can't check ${target} without ${source}`);
      checks = checks.filter((c) => mainOption(c).name !== target);
    }
  }
  const results = checks.map((check) => {
    const result = evaluate(check, input);
    return { check, result, ok: result.startsWith("OK") };
  });
  return { results, warnings };
}

/** The check with `name`'s wanted value replaced, when the check is about `name`. */
function withExpected(check: OptionCheck | CompoundCheck, name: string, expected: string): OptionCheck | CompoundCheck {
  if (mainOption(check).name !== name) return check;
  if (check.kind === "option") return { ...check, expected };
  const replace = (item: Check): Check => (item.kind === "option" && item.name === name ? { ...item, expected } : item);
  const [first, ...rest] = check.items;
  return { ...check, items: [{ ...first, expected }, ...rest.map(replace)] };
}

function valueOf(option: OptionCheck, input: CheckInput): string | undefined {
  return input[option.type]?.get(option.name);
}

function evaluate(check: Check, input: CheckInput): string {
  switch (check.kind) {
    case "option":
      return evaluateOption(check.expected, valueOf(check, input));
    case "version":
      return evaluateVersion(check.atLeast, input.version);
    case "or":
      return evaluateOr(check, input);
    case "and":
      return evaluateAnd(check, input);
  }
}

function evaluateOption(expected: string, state: string | undefined): string {
  if (expected.length > 1 && expected.startsWith("*") && expected.endsWith("*")) {
    if (state === undefined) return "FAIL: is not found";
    const items = trimChars(state, '"').split(",");
    return items.includes(trimChars(expected, "*")) ? `OK: in ${state}` : `FAIL: not in ${state}`;
  }
  if (expected === "is present") return state === undefined ? "FAIL: is not present" : "OK: is present";
  if (expected === "is not off") {
    if (state === undefined) return "FAIL: is off, not found";
    if (state === "off") return "FAIL: is off";
    if (trimChars(state, '"').split(",").includes("off") || state === "0" || state === "is not set") return `FAIL: is off (${state})`;
    return `OK: is not off (${state})`;
  }
  if (expected === state) return "OK";
  if (state === undefined) return expected === "is not set" ? "OK: is not found" : "FAIL: is not found";
  return `FAIL: "${state}"`;
}

function evaluateVersion(wanted: readonly [number, number, number], actual: Version | undefined): string {
  if (!actual) throw new Error("internal: a version check without the kernel version");
  const shown = `(${wanted.join(", ")})`;
  for (let i = 0; i < 3; i++) {
    const a = actual[i] as number;
    const w = wanted[i] as number;
    if (a !== w) return a > w ? `OK: version >= ${shown}` : `FAIL: version < ${shown}`;
  }
  return `OK: version >= ${shown}`;
}

/** The option an item of a compound is about, for the words that explain the compound's result. */
function describedOption(item: Check): OptionCheck | undefined {
  if (item.kind === "version") return undefined;
  return item.kind === "option" ? item : item.items[0];
}

/** The first passing item decides, and says which alternative passed; if none passes, the main option's result stands. */
function evaluateOr(check: CompoundCheck, input: CheckInput): string {
  let mainResult = "";
  for (const [i, item] of check.items.entries()) {
    const result = evaluate(item, input);
    if (i === 0) mainResult = result;
    if (!result.startsWith("OK")) continue;
    const option = describedOption(item);
    if (i === 0 || !option) return result;
    if (result === "OK") return `OK: ${option.name} is "${option.expected}"`;
    if (result.startsWith("OK: in ")) return `OK: "${trimChars(option.expected, "*")}" is in ${option.name}`;
    if (result === "OK: is not found") return `OK: ${option.name} is not found`;
    if (result === "OK: is present") return `OK: ${option.name} is present`;
    if (result.startsWith("OK: is not off")) return `OK: ${option.name} is not off`;
    return result;
  }
  return mainResult;
}

/** Conditions are checked last to first; the first failing condition explains the failure, else the main option decides. */
function evaluateAnd(check: CompoundCheck, input: CheckInput): string {
  for (let i = check.items.length - 1; i > 0; i--) {
    const item = check.items[i] as Check;
    const result = evaluate(item, input);
    if (result.startsWith("OK")) continue;
    const option = describedOption(item);
    if (!option) return result;
    if (result.startsWith('FAIL: "') || result === "FAIL: is not found") return `FAIL: ${option.name} is not "${option.expected}"`;
    if (result.startsWith("FAIL: not in ")) return `FAIL: "${trimChars(option.expected, "*")}" is not in ${option.name}`;
    if (result === "FAIL: is not present") return `FAIL: ${option.name} is not present`;
    if (result === "FAIL: is off" || result.startsWith("FAIL: is off (")) return `FAIL: ${option.name} is off`;
    if (result === "FAIL: is off, not found") return `FAIL: ${option.name} is off, not found`;
    return result;
  }
  return evaluate(check.items[0], input);
}

/** Python's str.strip(chars) for one character: every leading and trailing copy goes. */
function trimChars(text: string, char: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && text[start] === char) start++;
  while (end > start && text[end - 1] === char) end--;
  return text.slice(start, end);
}
