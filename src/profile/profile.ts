import { access, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";
import { InputError } from "../core/errors.ts";
import { canonicalJson, sha256 } from "../core/hash.ts";
import { displayPath, FieldReader, YamlFile } from "../core/yamlfile.ts";
import { DECISIONS, DEFAULT_DECISIONS } from "../harden/gate.ts";

/** An image profile: profiles/<name>.yaml, the only input of a build besides the tree. */
export interface Profile {
  name: string;
  description: string;
  file: string;
  arch: "x86_64";
  kernelProfile: string;
  /** extra kernel config fragments (paths), applied after the kernel profile's */
  kernelExtraConfig: string[];
  packages: string[];
  /** the kernel command line: the base profile's, then `kernelArgs` */
  cmdline: string;
  /** the profile this one customizes (profiles/<base>.yaml), if any */
  base?: string;
  /** kernel arguments this profile adds to its base's command line */
  kernelArgs: string[];
  /** what the build publishes */
  outputs: Output[];
  /** sha256 of the canonical resolved profile: the same image definition has the same ID anywhere */
  id: string;
  /** the kernel hardening gate's decision groups (kernel-hardening-checker's) */
  hardeningDecisions: readonly string[];
  /** fail a build when an artifact grows by more than this percentage over the previous build of the profile */
  sizeBudgetPercent?: number;
}

const ARCHES = ["x86_64"] as const;
export const OUTPUTS = ["uki", "kernel-initramfs", "installer", "disk"] as const;
export type Output = (typeof OUTPUTS)[number];
const DEFAULT_OUTPUTS: readonly Output[] = ["uki", "kernel-initramfs", "installer"];
/** What a profile built on a base may set; the rest (arch, kernel, packages, cmdline, hardening) is the base's. */
const CUSTOM_KEYS = ["name", "description", "base", "kernelArgs", "outputs", "sizeBudget"];
const KERNEL_ARG = /^[^\s"]+$|^[^\s"=]+="[^"\n]*"$/;
const NAME = /^[a-z0-9][a-z0-9-]*$/;

export function profilePath(projectRoot: string, nameOrFile: string): string {
  if (nameOrFile.includes("/") || nameOrFile.endsWith(".yaml")) return nameOrFile;
  if (!NAME.test(nameOrFile)) {
    throw new InputError(`profile name '${nameOrFile}' is not valid: use lowercase letters, digits and '-', or a path to a .yaml file`);
  }
  return join(projectRoot, "profiles", `${nameOrFile}.yaml`);
}

/** The profile ID: what the image is made of, not where the files are (config fragments by content). */
async function profileId(p: Omit<Profile, "id" | "file" | "description">): Promise<string> {
  const fragments = await Promise.all(p.kernelExtraConfig.map(async (f) => sha256(await readFile(f))));
  return sha256(canonicalJson({ ...p, kernelExtraConfig: fragments, base: undefined }));
}

export async function loadProfile(path: string, seen: readonly string[] = []): Promise<Profile> {
  if (seen.includes(resolve(path))) throw new InputError(`${displayPath(path)}: profiles base on each other in a cycle: ${[...seen, path].map(displayPath).join(" -> ")}`);
  const yaml = await YamlFile.load(path);
  const f = new FieldReader(yaml);
  const top = f.mapping(yaml.data, []);
  if (top.base !== undefined) return loadCustomProfile(path, yaml, f, top, [...seen, resolve(path)]);
  f.onlyKeys(top, [], ["name", "description", "arch", "kernel", "packages", "cmdline", "hardening", "sizeBudget", "kernelArgs", "outputs"]);
  const kernel = f.mapping(top.kernel, ["kernel"]);
  f.onlyKeys(kernel, ["kernel"], ["profile", "extraConfig"]);
  const arch = f.string(top.arch, ["arch"]);
  if (!(ARCHES as readonly string[]).includes(arch)) {
    throw yaml.error(["arch"], `arch '${arch}' is not supported; supported: ${ARCHES.join(", ")}`);
  }
  const cmdline = f.string(top.cmdline, ["cmdline"]);
  if (/[\n\0]/.test(cmdline)) throw yaml.error(["cmdline"], "cmdline must be a single line");
  const hardening = top.hardening === undefined ? {} : f.mapping(top.hardening, ["hardening"]);
  f.onlyKeys(hardening, ["hardening"], ["decisions"]);
  const decisions =
    hardening.decisions === undefined
      ? [...DEFAULT_DECISIONS]
      : f.list(hardening.decisions, ["hardening", "decisions"]).map((d, i) => {
          const at = ["hardening", "decisions", i];
          const decision = f.string(d, at);
          if (!(DECISIONS as readonly string[]).includes(decision)) throw yaml.error(at, `unknown decision group '${decision}'; use any of ${DECISIONS.join(", ")}`);
          return decision;
        });
  const sizeBudgetPercent = readSizeBudget(f, top);
  const kernelArgs = readKernelArgs(yaml, f, top);
  const resolved = {
    ...(sizeBudgetPercent !== undefined ? { sizeBudgetPercent } : {}),
    name: f.string(top.name, ["name"], NAME, "lowercase letters, digits and '-'"),
    arch: "x86_64" as const,
    kernelProfile: f.string(kernel.profile, ["kernel", "profile"], NAME),
    kernelExtraConfig: f
      .list(kernel.extraConfig, ["kernel", "extraConfig"])
      .map((p, i) => resolve(dirname(path), f.string(p, ["kernel", "extraConfig", i]))),
    packages: f.list(top.packages, ["packages"]).map((p, i) => f.string(p, ["packages", i])),
    cmdline: [cmdline, ...kernelArgs].join(" "),
    kernelArgs,
    outputs: readOutputs(yaml, f, top, DEFAULT_OUTPUTS),
    hardeningDecisions: decisions,
  };
  return finish(path, f, top, resolved);
}

/** The resolved profile with what does not define the image: its file, description, and the ID of what does. */
async function finish(path: string, f: FieldReader, top: Record<string, unknown>, resolved: Omit<Profile, "id" | "file" | "description">): Promise<Profile> {
  return { ...resolved, file: path, description: f.optionalString(top.description, ["description"]) ?? "", id: await profileId(resolved) };
}

function readSizeBudget(f: FieldReader, top: Record<string, unknown>): number | undefined {
  const budget = top.sizeBudget === undefined ? undefined : f.mapping(top.sizeBudget, ["sizeBudget"]);
  if (budget) f.onlyKeys(budget, ["sizeBudget"], ["percent"]);
  return budget ? f.integer(budget.percent, ["sizeBudget", "percent"]) : undefined;
}

function readKernelArgs(yaml: YamlFile, f: FieldReader, top: Record<string, unknown>): string[] {
  if (top.kernelArgs === undefined) return [];
  return f.list(top.kernelArgs, ["kernelArgs"]).map((a, i) => {
    const arg = f.string(a, ["kernelArgs", i]);
    if (!KERNEL_ARG.test(arg)) throw yaml.error(["kernelArgs", i], `'${arg}' is not one kernel argument: write name or name=value, without spaces (quote a value with spaces as name="a b")`);
    return arg;
  });
}

function readOutputs(yaml: YamlFile, f: FieldReader, top: Record<string, unknown>, otherwise: readonly Output[]): Output[] {
  if (top.outputs === undefined) return [...otherwise];
  const outputs = f.list(top.outputs, ["outputs"]).map((o, i) => {
    const output = f.string(o, ["outputs", i]);
    if (!(OUTPUTS as readonly string[]).includes(output)) throw yaml.error(["outputs", i], `unknown output '${output}'; use any of ${OUTPUTS.join(", ")}`);
    return output as Output;
  });
  if (outputs.includes("disk") && !outputs.includes("installer")) throw yaml.error(["outputs"], "the disk image is made from the installer image: add 'installer' to outputs");
  if (outputs.length === 0) throw yaml.error(["outputs"], `name at least one output: ${OUTPUTS.join(", ")}`);
  return [...new Set(outputs)];
}

/** The project's own profiles, where a base named without a path is found when it is not beside the profile. */
const SHIPPED_PROFILES = fileURLToPath(new URL("../../profiles", import.meta.url));

async function basePathOf(profile: string, base: string): Promise<string> {
  if (base.endsWith(".yaml")) return resolve(dirname(profile), base);
  if (!NAME.test(base)) throw new InputError(`${displayPath(profile)}: base '${base}' is neither a profile name nor a .yaml path`);
  const beside = join(dirname(profile), `${base}.yaml`);
  return (await exists(beside)) ? beside : join(SHIPPED_PROFILES, `${base}.yaml`);
}

const exists = (path: string) => access(path).then(() => true, () => false);

/** A profile that customizes another: the base's image, plus kernel arguments and its own outputs. */
async function loadCustomProfile(path: string, yaml: YamlFile, f: FieldReader, top: Record<string, unknown>, seen: readonly string[]): Promise<Profile> {
  const extra = Object.keys(top).find((k) => !CUSTOM_KEYS.includes(k));
  if (extra) throw yaml.error([extra], `'${extra}' comes from the base profile; a profile with 'base' may set ${CUSTOM_KEYS.join(", ")}`);
  const baseName = f.string(top.base, ["base"]);
  const basePath = await basePathOf(path, baseName);
  if (!(await exists(basePath))) throw yaml.error(["base"], `base profile '${baseName}' not found (${displayPath(basePath)})`);
  const base = await loadProfile(basePath, seen);
  const kernelArgs = readKernelArgs(yaml, f, top);
  const sizeBudgetPercent = readSizeBudget(f, top) ?? base.sizeBudgetPercent;
  const resolved = {
    arch: base.arch,
    kernelProfile: base.kernelProfile,
    kernelExtraConfig: base.kernelExtraConfig,
    packages: base.packages,
    hardeningDecisions: base.hardeningDecisions,
    ...(sizeBudgetPercent !== undefined ? { sizeBudgetPercent } : {}),
    name: f.string(top.name, ["name"], NAME, "lowercase letters, digits and '-'"),
    base: base.name,
    cmdline: [base.cmdline, ...kernelArgs].join(" "),
    kernelArgs: [...base.kernelArgs, ...kernelArgs],
    outputs: readOutputs(yaml, f, top, base.outputs),
  };
  return finish(path, f, top, resolved);
}
