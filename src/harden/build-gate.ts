import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { archNamed } from "../core/arch.ts";
import { BronzeError } from "../core/errors.ts";
import { runChecks, type CheckInput } from "./engine.ts";
import { applyGate, gateFailureMessage, type GateScope, type GateVerdict, type HardeningException } from "./gate.ts";
import { parseCmdline, parseKernelConfig, parseSysctl } from "./inputs.ts";
import { tally, toUpstreamJson, type Tally, type UpstreamJsonResult } from "./report.ts";
import { ARCHES, type Arch } from "./arches.ts";
import { UPSTREAM } from "./rules.ts";

/** What the gate enforces for one image profile. */
export interface HardeningPolicy {
  arch: Arch;
  kernelProfile: string;
  decisions: readonly string[];
  exceptions: readonly HardeningException[];
}

/** The record of the image gate: published as hardening.json, summarised in manifest.json. */
export interface HardeningReport {
  engine: "builtin";
  rules: typeof UPSTREAM;
  arch: Arch;
  decisions: readonly string[];
  summary: Tally & { suppressed: number; gatedFail: number; ungatedFail: number };
  suppressed: { option_name: string; type: string; check_result: string; reason: string; exception: string }[];
  results: UpstreamJsonResult[];
}

/** kernel-hardening-checker's name of a profile's architecture. */
export function hardeningArch(profileArch: string): Arch {
  const arch = archNamed(profileArch).hardening;
  if (!(ARCHES as readonly string[]).includes(arch)) throw new Error(`internal: kernel-hardening-checker has no architecture ${arch}`);
  return arch as Arch;
}

function enforce(verdict: GateVerdict, scope: GateScope, what: string): void {
  if (!verdict.passed) throw new BronzeError(gateFailureMessage(verdict, scope, what));
}

/** The gate on a resolved kernel config, before compiling: kconfig checks only, failing fast. */
export function kernelConfigGate(policy: HardeningPolicy): (dotConfig: string) => void {
  return (dotConfig) => {
    const config = parseKernelConfig(`kernel config of kernel profile ${policy.kernelProfile}`, dotConfig);
    const input: CheckInput = { arch: policy.arch, version: config.version, kconfig: config.options };
    const scope = { ...policy, complete: false };
    enforce(applyGate(runChecks(input).results.map(toUpstreamJson), input, policy.exceptions, scope), scope, "the kernel config");
  };
}

/**
 * The sysctl values the image's init sets: every usr/lib/sysctl.d/*.conf of the root packages,
 * in name order ('-key' settings count: init applies them where the kernel has the key).
 */
export async function imageSysctlText(packageDirs: readonly string[]): Promise<string> {
  const files: { name: string; path: string }[] = [];
  for (const dir of packageDirs) {
    const confDir = join(dir, "usr", "lib", "sysctl.d");
    const names = await readdir(confDir).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith(".conf"))) files.push({ name, path: join(confDir, name) });
  }
  files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const lines: string[] = [];
  for (const file of files) {
    for (const line of (await readFile(file.path, "utf8")).split("\n")) {
      const text = line.trim();
      if (text === "" || text.startsWith("#") || text.startsWith(";")) continue;
      lines.push(text.startsWith("-") ? text.slice(1) : text);
    }
  }
  return `${lines.join("\n")}\n`;
}

/** The gate on what boots: the kernel config, the UKI's command line and init's sysctls, all together. */
export function imageGate(policy: HardeningPolicy, parts: { dotConfig: string; cmdline: string; sysctl: string }): HardeningReport {
  const config = parseKernelConfig(`kernel config of kernel profile ${policy.kernelProfile}`, parts.dotConfig);
  const input: CheckInput = {
    arch: policy.arch,
    version: config.version,
    kconfig: config.options,
    cmdline: parseCmdline("the profile's command line", `${parts.cmdline}\n`),
    sysctl: parseSysctl("the image's sysctl.d", parts.sysctl),
  };
  const results = runChecks(input).results.map(toUpstreamJson);
  const scope = { ...policy, complete: true };
  const verdict = applyGate(results, input, policy.exceptions, scope);
  enforce(verdict, scope, "the image (kernel config, UKI command line, sysctls)");
  return {
    engine: "builtin",
    rules: UPSTREAM,
    arch: policy.arch,
    decisions: policy.decisions,
    summary: {
      ...tally(results),
      suppressed: verdict.suppressed.length,
      gatedFail: verdict.failures.length,
      ungatedFail: verdict.ungated.length,
    },
    suppressed: verdict.suppressed.map(({ result, exception }) => ({
      option_name: result.option_name,
      type: result.type,
      check_result: result.check_result,
      reason: exception.reason,
      exception: exception.where,
    })),
    results,
  };
}
