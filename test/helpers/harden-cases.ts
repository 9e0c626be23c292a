/**
 * The inputs on which bronze's hardening engine is compared with upstream's
 * kernel-hardening-checker: Debian's own kernel configs (package linux-config-6.1), and
 * seeded variations of them that reach every kind of check result (OR/AND branches, version
 * checks, list membership, "is not off", other arches). scripts/harden-fixtures.ts runs
 * upstream on exactly these inputs to write test/fixtures/harden/; the unit test runs ours.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Check } from "../../src/harden/rule-model.ts";
import { CMDLINE_RULES, KCONFIG_RULES, SYSCTL_RULES } from "../../src/harden/rules.ts";

export const DEBIAN_CONFIGS = "/usr/src/linux-config-6.1";
const FIXTURES = join(import.meta.dirname, "..", "fixtures", "harden");

export interface HardenCase {
  name: string;
  config?: string;
  cmdline?: string;
  sysctl?: string;
}

export function debianConfig(flavour: string): string {
  return execFileSync("xz", ["-dc", join(DEBIAN_CONFIGS, `config.${flavour}.xz`)], { encoding: "utf8", maxBuffer: 64 << 20 });
}

function fixtureText(name: string): string {
  return readFileSync(join(FIXTURES, name), "utf8");
}

/** A small deterministic generator (an LCG), so the same seed gives the same input everywhere. */
function generator(seed: number): { next: () => number; pick: <T>(items: readonly T[]) => T } {
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  return { next, pick: (items) => items[Math.floor(next() * items.length)] as (typeof items)[number] };
}

function optionNames(type: string): string[] {
  const names = new Set<string>();
  const walk = (c: Check) => {
    if (c.kind === "option") {
      if (c.type === type) names.add(c.name);
    } else if (c.kind !== "version") c.items.forEach(walk);
  };
  for (const rule of [...KCONFIG_RULES, ...CMDLINE_RULES, ...SYSCTL_RULES]) walk(rule.check);
  return [...names];
}

const ARCH_OPTIONS = ["CONFIG_X86_64", "CONFIG_X86_32", "CONFIG_ARM64", "CONFIG_ARM", "CONFIG_RISCV"];
const KCONFIG_VALUES = ["y", "y", "is not set", null, "m", "0", "65536", "32768", "100", "0x0", "28", '"lockdown,yama,landlock,selinux"', '"yama"', "1"];
const CMDLINE_VALUES = ["1", "0", "on", "off", "auto", "auto,nosmt", "full", "never", "force", "kcfi", "confidentiality", "none", "always", "yes", "N", "P", "disable_early_pci_dma", "kernel", "force-on"];
const SYSCTL_VALUES = ["0", "1", "2", "3", "100", "65536", "32768", "32", "28"];

/** Debian's amd64 config with about half of the checked options changed, moved to another arch, and a cmdline and sysctls to match. */
function variation(seed: number, base: string): HardenCase {
  const { next, pick } = generator(seed);
  const arch = ARCH_OPTIONS[seed % ARCH_OPTIONS.length] as string;
  const changed = new Map<string, string | null>();
  for (const name of [...optionNames("kconfig"), "CONFIG_ARCH_MMAP_RND_BITS_MAX", "CONFIG_LOCALVERSION", "CONFIG_BPF_JIT", "CONFIG_KEXEC_CORE"]) {
    if (!ARCH_OPTIONS.includes(name) && next() < 0.5) changed.set(name, pick(KCONFIG_VALUES));
  }
  const lines = base.split("\n").filter((line) => {
    const m = /^(?:# )?(CONFIG_[A-Za-z0-9_]+)[= ]/.exec(line);
    return !(m && (changed.has(m[1] as string) || ARCH_OPTIONS.includes(m[1] as string)));
  });
  lines.push(`${arch}=y`);
  for (const [name, value] of changed) if (value !== null) lines.push(value === "is not set" ? `# ${name} is not set` : `${name}=${value}`);
  const params = optionNames("cmdline")
    .filter(() => next() < 0.3)
    .map((name) => (next() < 0.2 ? name : `${name}=${pick(CMDLINE_VALUES)}`));
  const sysctls = ["kernel.printk = 4 4 1 7", "kernel.cad_pid = 1"];
  for (const name of optionNames("sysctl")) if (next() < 0.6) sysctls.push(`${name}${pick([" = ", "=", " ="])}${pick(SYSCTL_VALUES)}`);
  return { name: `variation ${seed} (${arch})`, config: `${lines.join("\n")}\n`, cmdline: `${params.join(" ")}\n`, sysctl: `${sysctls.join("\n")}\n` };
}

/**
 * 'sysctl -a' as a user runs it on an arch upstream does not know: stderr mixed in, two
 * root-only keys denied, and kernel.arch matching no arch (arch-dependent checks dropped).
 */
function deniedSysctls(sysctl: string): string {
  const denied = new Set(["vm.mmap_rnd_bits", "fs.protected_regular"]);
  const kept = sysctl.split("\n").filter((line) => !denied.has(line.split("=")[0]?.trim() ?? ""));
  const lines = kept.map((line) => (line.startsWith("kernel.arch") ? "kernel.arch = s390x" : line));
  lines.push('sysctl: reading key "net.ipv6.conf.all.stable_secret"', ...[...denied].map((key) => `sysctl: permission denied on key '${key}'`), "");
  return lines.join("\n");
}

export function hardenCases(): HardenCase[] {
  const amd64 = debianConfig("amd64_none_amd64");
  const cmdline = fixtureText("cmdline-hardened.txt");
  const sysctl = fixtureText("sysctl-debian.txt");
  return [
    { name: "Debian amd64", config: amd64 },
    { name: "Debian cloud-amd64 with a hardened cmdline and Debian's sysctls", config: debianConfig("amd64_none_cloud-amd64"), cmdline, sysctl },
    { name: "Debian rt-amd64 with a weakened cmdline", config: debianConfig("amd64_rt_amd64"), cmdline: fixtureText("cmdline-weakened.txt") },
    { name: "Debian's sysctls alone", sysctl },
    { name: "sysctls read as a user on an unknown arch", sysctl: deniedSysctls(sysctl) },
    ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((seed) => variation(seed, amd64)),
  ];
}
