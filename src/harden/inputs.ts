import { gunzipSync } from "node:zlib";
import { InputError } from "../core/errors.ts";
import { ARCHES, type Arch } from "./arches.ts";

/** What the checker reads: option values by name, as the files spell them. */
export interface KernelConfig {
  file: string;
  options: Map<string, string>;
  /** from the '# Linux/<arch> X.Y.Z Kernel Configuration' line, when there is one */
  version?: Version;
  /** the one CONFIG_<ARCH>=y among the supported arches, when there is one */
  arch?: Arch;
}

export type Version = readonly [number, number, number];

/** Text of a config, cmdline or sysctl file; .gz files are unpacked (as upstream does for /proc/config.gz). */
export function decodeInput(file: string, bytes: Buffer): string {
  const raw = file.endsWith(".gz") ? gunzipOrFail(file, bytes) : bytes;
  const text = new TextDecoder("utf-8", { fatal: false }).decode(raw);
  if (text.includes("\0") || text.includes("\uFFFD")) {
    throw new InputError(`${file}: is a binary file, not text; give a kernel config (.config), a kernel command line or 'sysctl -a' output`);
  }
  return text;
}

function gunzipOrFail(file: string, bytes: Buffer): Buffer {
  try {
    return gunzipSync(bytes);
  } catch {
    throw new InputError(`${file}: ends in .gz but is not gzip data`);
  }
}

const OPTION_ON = /^CONFIG_[a-zA-Z0-9_]+=/;
const OPTION_OFF = /^# (CONFIG_[a-zA-Z0-9_]+) is not set$/;
const VERSION_LINE = /^# Linux\/.+ Kernel Configuration$|^Linux version .+/;
const ARCH_LINE = /^CONFIG_([A-Z0-9_]+)=y$/;

/** Parses a kernel .config; every line must be an option, a '# CONFIG_X is not set' line, a comment or blank. */
export function parseKernelConfig(file: string, text: string): KernelConfig {
  const options = new Map<string, string>();
  const seenAt = new Map<string, number>();
  let version: Version | undefined;
  let versionSeen = false;
  const arches: { arch: Arch; line: number }[] = [];
  const lines = splitLines(text);
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    if (!versionSeen && VERSION_LINE.test(raw)) {
      versionSeen = true;
      version = parseVersion(raw.trim().split(/\s+/)[2] ?? "", `${file}:${lineNo}`);
    }
    const archMatch = ARCH_LINE.exec(raw);
    if (archMatch && (ARCHES as readonly string[]).includes(archMatch[1] ?? "")) arches.push({ arch: archMatch[1] as Arch, line: lineNo });
    const line = raw.trim();
    let name: string;
    let value: string;
    if (OPTION_ON.test(line)) {
      const eq = line.indexOf("=");
      name = line.slice(0, eq);
      value = line.slice(eq + 1);
      if (value === "") {
        throw new InputError(`${file}:${lineNo}: ${name} has an empty value; write '# ${name} is not set' to disable it, or give it a value`);
      }
      if (value === "is not set") throw new InputError(`${file}:${lineNo}: '${line}' is malformed; a disabled option is written '# ${name} is not set'`);
    } else if (OPTION_OFF.test(line)) {
      name = (OPTION_OFF.exec(line) as RegExpExecArray)[1] as string;
      value = "is not set";
    } else if (line === "" || line.startsWith("#")) {
      return;
    } else {
      throw new InputError(`${file}:${lineNo}: not a kernel config line: '${clip(line)}'; a .config holds CONFIG_NAME=value, '# CONFIG_NAME is not set', comments and blank lines`);
    }
    const earlier = seenAt.get(name);
    if (earlier !== undefined) throw new InputError(`${file}:${lineNo}: ${name} is set again (first at line ${earlier}); keep one`);
    seenAt.set(name, lineNo);
    options.set(name, value);
  });
  if (options.size === 0) throw new InputError(`${file}: holds no CONFIG_ options; is it a kernel config?`);
  const distinct = [...new Set(arches.map((a) => a.arch))];
  if (distinct.length > 1) {
    throw new InputError(`${file}: sets more than one architecture (${arches.map((a) => `CONFIG_${a.arch}=y at line ${a.line}`).join(", ")})`);
  }
  return { file, options, version, arch: distinct[0] };
}

/** "6.1.192", "6.1.0-rc1+", "6.1.192-bronze": the first three numbers; anything else is refused. */
export function parseVersion(text: string, where: string): Version {
  const numbers = text.replace(/\+/g, "-").split("-", 1)[0]?.split(".") ?? [];
  if (numbers.length < 3 || !numbers.every((n) => /^[0-9]+$/.test(n))) {
    throw new InputError(`${where}: kernel version '${text}' is not X.Y.Z`);
  }
  return [Number(numbers[0]), Number(numbers[1]), Number(numbers[2])];
}

/**
 * Kernel parameters whose values the kernel does not read with kstrtobool(), so "on" and "1"
 * differ for them (upstream's list).
 */
const NOT_KSTRTOBOOL = new Set([
  "debugfs", "mitigations", "pti", "spectre_v2", "spectre_v2_user", "spectre_bhi", "spec_store_bypass_disable", "l1tf", "mds",
  "tsx_async_abort", "srbds", "mmio_stale_data", "retbleed", "rodata", "ssbd", "spec_rstack_overflow", "gather_data_sampling",
  "reg_file_data_sampling", "tsa", "indirect_target_selection", "vmscape", "slub_debug", "iommu", "vsyscall", "vdso32", "vdso", "cfi",
  "tsx", "lockdown", "intel_iommu", "efi", "hash_pointers", "proc_mem.force_override",
]);

/** A boolean parameter's value as the kernel reads it: "1" or "0", or the value unchanged. */
export function normalizeParameter(name: string, value: string): string {
  if (NOT_KSTRTOBOOL.has(name)) return value;
  const lower = value.toLowerCase();
  if (["1", "on", "y", "yes", "t", "true"].includes(lower)) return "1";
  if (["0", "off", "n", "no", "f", "false"].includes(lower)) return "0";
  return value;
}

/** A kernel command line (one line, as /proc/cmdline): parameters by name, the last one winning. */
export function parseCmdline(file: string, text: string): Map<string, string> {
  if (text === "") throw new InputError(`${file}: is empty; a kernel command line file holds one line (it may be blank)`);
  const lines = splitLines(text);
  if (lines.length > 1) throw new InputError(`${file}:2: a kernel command line is one line; join the parameters with spaces`);
  const params = new Map<string, string>();
  for (const word of (lines[0] ?? "").split(/\s+/).filter(Boolean)) {
    const eq = word.indexOf("=");
    const name = eq < 0 ? word : word.slice(0, eq);
    params.set(name, normalizeParameter(name, eq < 0 ? "" : word.slice(eq + 1)));
  }
  return params;
}

const SYSCTL_LINE = /^[a-zA-Z0-9/*._-]+ ?=/;
const SYSCTL_DENIED = /^sysctl: permission denied on key '([a-zA-Z0-9/*._-]+)'/;

/**
 * 'sysctl -a' output (or a sysctl.conf): values by key, the last one winning. Its own
 * complaints ('sysctl: ...', from stderr) are skipped, except that a key it was denied
 * reads as "permission denied", as upstream records it, so its check fails visibly.
 */
export function parseSysctl(file: string, text: string): Map<string, string> {
  const values = new Map<string, string>();
  splitLines(text).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    if (line.startsWith("sysctl: ")) {
      const denied = SYSCTL_DENIED.exec(line)?.[1];
      if (denied !== undefined) values.set(denied, "permission denied");
      return;
    }
    if (!SYSCTL_LINE.test(line)) throw new InputError(`${file}:${i + 1}: not a sysctl line: '${clip(line)}'; expected 'key = value' as 'sysctl -a' prints`);
    const eq = line.indexOf("=");
    values.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  });
  if (values.size === 0) throw new InputError(`${file}: holds no sysctl values; give the output of 'sysctl -a'`);
  return values;
}

/** The arch 'sysctl -a' reports as kernel.arch, when it is one of ours. */
export function sysctlArch(values: Map<string, string>): Arch | undefined {
  const machine = values.get("kernel.arch");
  if (machine === undefined) return undefined;
  const patterns: [Arch, RegExp][] = [
    ["ARM64", /^(?:aarch64|armv8)/],
    ["ARM", /^armv[3-7]/],
    ["RISCV", /^(?:riscv32|riscv64)/],
    ["X86_32", /^i[3-6]?86/],
    ["X86_64", /^x86_64/],
  ];
  return patterns.find(([, re]) => re.test(machine))?.[0];
}

function splitLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
}

function clip(line: string): string {
  return line.length > 60 ? `${line.slice(0, 57)}...` : line;
}
