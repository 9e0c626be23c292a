import { InputError } from "../core/errors.ts";
import { FieldReader, YamlFile } from "../core/yamlfile.ts";
import { displayPath } from "../core/paths.ts";
import type { CheckInput } from "./engine.ts";
import type { UpstreamJsonResult } from "./report.ts";
import { ARCHES, type Arch } from "./arches.ts";
import type { OptionType } from "./rule-model.ts";

/** The decision groups the gate enforces unless a profile says otherwise. */
export const DEFAULT_DECISIONS = ["defconfig", "kspp"] as const;
/** Every decision group upstream's rules use. */
export const DECISIONS = ["defconfig", "kspp", "a13xp0p0v", "clipos", "grsec", "grapheneos", "lockdown", "maintainer", "cis", "debian"] as const;

/** "defconfig,kspp" as a list of known decision groups. */
export function parseDecisions(text: string): string[] {
  const decisions = text.split(",").map((d) => d.trim()).filter(Boolean);
  const unknown = decisions.filter((d) => !(DECISIONS as readonly string[]).includes(d));
  if (decisions.length === 0 || unknown.length) throw new InputError(`--decisions: unknown decision group(s) ${unknown.join(", ") || "(none given)"}; use any of ${DECISIONS.join(", ")}`);
  return decisions;
}

/** A reviewed decision to accept one failing check. */
export interface HardeningException {
  option: string;
  /** "all", or the one arch it is for */
  arch: Arch | "all";
  /** kernel profiles (kernel/config/profiles) it is for; all when absent */
  kernelProfiles?: readonly string[];
  /** the value it accepts ("is not set" for a disabled option); any when absent */
  value?: string;
  reason: string;
  /** file:line, for messages */
  where: string;
}

const KEYS = ["option", "arch", "kernelProfiles", "value", "reason"];

/** Loads kernel/hardening/exceptions.yaml: `exceptions:` a list of {option, arch, kernelProfiles?, value?, reason}. */
export async function loadExceptions(path: string, label = displayPath(path)): Promise<HardeningException[]> {
  const yaml = await YamlFile.load(path);
  const f = new FieldReader(yaml);
  const top = f.mapping(yaml.data, []);
  f.onlyKeys(top, [], ["exceptions"]);
  const seen = new Map<string, string>();
  return f.list(top.exceptions, ["exceptions"]).map((raw, i) => {
    const at = ["exceptions", i];
    const item = f.mapping(raw, at);
    f.onlyKeys(item, at, KEYS);
    const arch = f.string(item.arch, [...at, "arch"]);
    if (arch !== "all" && !(ARCHES as readonly string[]).includes(arch)) {
      throw yaml.error([...at, "arch"], `arch '${arch}' is not known; use all or one of ${ARCHES.join(", ")}`);
    }
    const reason = f.string(item.reason, [...at, "reason"]);
    if (reason.trim().length < 20) throw yaml.error([...at, "reason"], "the reason must say why the check can fail safely (at least 20 characters)");
    const exception: HardeningException = {
      option: f.string(item.option, [...at, "option"], /^[A-Za-z0-9_.\-/]+$/, "an option name as the checker reports it (CONFIG_X, a kernel parameter, a sysctl)"),
      arch: arch as Arch | "all",
      kernelProfiles: item.kernelProfiles === undefined ? undefined : f.list(item.kernelProfiles, [...at, "kernelProfiles"]).map((p, j) => f.string(p, [...at, "kernelProfiles", j])),
      value: f.optionalString(item.value, [...at, "value"]),
      reason,
      where: `${label}:${yaml.lineOf(at)}`,
    };
    const key = `${exception.option} ${exception.arch} ${exception.kernelProfiles?.join(",") ?? "*"}`;
    const earlier = seen.get(key);
    if (earlier) throw new InputError(`${exception.where}: the exception for ${exception.option} repeats ${earlier}; keep one`);
    seen.set(key, exception.where);
    return exception;
  });
}

export interface GateScope {
  arch: Arch;
  /** the kernel profile, which exceptions may be limited to */
  kernelProfile: string;
  decisions: readonly string[];
  /**
   * true when kconfig, cmdline and sysctl were all checked, so an exception that matches no
   * failure is stale; false for the kconfig-only check before compiling
   */
  complete: boolean;
}

export interface GateVerdict {
  checked: number;
  ok: number;
  /** failing checks in the gated decision groups that no exception covers */
  failures: UpstreamJsonResult[];
  suppressed: { result: UpstreamJsonResult; exception: HardeningException }[];
  /** failing checks outside the gated groups: reported, not enforced */
  ungated: UpstreamJsonResult[];
  stale: HardeningException[];
  passed: boolean;
}

function appliesTo(exception: HardeningException, scope: GateScope): boolean {
  return (exception.arch === "all" || exception.arch === scope.arch) && (!exception.kernelProfiles || exception.kernelProfiles.includes(scope.kernelProfile));
}

/** The value the checked input gave the option, as the checker reads it. */
function actualValue(result: UpstreamJsonResult, input: CheckInput): string | undefined {
  return input[result.type as OptionType]?.get(result.option_name);
}

/** Applies the gate: failures in the gated groups fail it unless excepted; unused exceptions are stale. */
export function applyGate(results: readonly UpstreamJsonResult[], input: CheckInput, exceptions: readonly HardeningException[], scope: GateScope): GateVerdict {
  const mine = exceptions.filter((e) => appliesTo(e, scope));
  const used = new Set<HardeningException>();
  const failures: UpstreamJsonResult[] = [];
  const suppressed: GateVerdict["suppressed"] = [];
  const ungated: UpstreamJsonResult[] = [];
  for (const result of results) {
    if (result.check_result_bool) continue;
    if (!scope.decisions.includes(result.decision)) {
      ungated.push(result);
      continue;
    }
    const value = actualValue(result, input);
    const exception = mine.find((e) => e.option === result.option_name && (e.value === undefined || e.value === value));
    if (exception) {
      used.add(exception);
      suppressed.push({ result, exception });
    } else {
      failures.push(result);
    }
  }
  const checkedNames = new Set(results.map((r) => r.option_name));
  const stale = mine.filter((e) => !used.has(e) && (scope.complete || checkedNames.has(e.option)));
  return {
    checked: results.length,
    ok: results.filter((r) => r.check_result_bool).length,
    failures,
    suppressed,
    ungated,
    stale,
    passed: failures.length === 0 && stale.length === 0,
  };
}

/** What a failed gate prints: each failure with what it wants, each stale exception, and the fix. */
export function gateFailureMessage(verdict: GateVerdict, scope: GateScope, what: string): string {
  const lines = [`kernel hardening gate failed for ${what} (kernel profile ${scope.kernelProfile}, ${scope.arch}, decisions ${scope.decisions.join(", ")}):`];
  for (const r of verdict.failures) lines.push(`  ${r.option_name} (${r.type}, ${r.decision}/${r.reason}) wants ${r.desired_val}: ${r.check_result}`);
  for (const e of verdict.stale) lines.push(`  stale exception ${e.where}: ${e.option} no longer fails; remove it`);
  if (verdict.failures.length) {
    lines.push("fix: set the option in kernel/config (or the profile's cmdline), or add a reviewed exception to kernel/hardening/exceptions.yaml (option, arch, value, reason)");
  }
  return lines.join("\n");
}
