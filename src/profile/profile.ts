import { dirname, join, resolve } from "node:path";
import { InputError } from "../core/errors.ts";
import { FieldReader, YamlFile } from "../core/yamlfile.ts";
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
  cmdline: string;
  /** the kernel hardening gate's decision groups (kernel-hardening-checker's) */
  hardeningDecisions: readonly string[];
  /** fail a build when an artifact grows by more than this percentage over the previous build of the profile */
  sizeBudgetPercent?: number;
}

const ARCHES = ["x86_64"] as const;
const NAME = /^[a-z0-9][a-z0-9-]*$/;

export function profilePath(projectRoot: string, nameOrFile: string): string {
  if (nameOrFile.includes("/") || nameOrFile.endsWith(".yaml")) return nameOrFile;
  if (!NAME.test(nameOrFile)) {
    throw new InputError(`profile name '${nameOrFile}' is not valid: use lowercase letters, digits and '-', or a path to a .yaml file`);
  }
  return join(projectRoot, "profiles", `${nameOrFile}.yaml`);
}

export async function loadProfile(path: string): Promise<Profile> {
  const yaml = await YamlFile.load(path);
  const f = new FieldReader(yaml);
  const top = f.mapping(yaml.data, []);
  f.onlyKeys(top, [], ["name", "description", "arch", "kernel", "packages", "cmdline", "hardening", "sizeBudget"]);
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
  const budget = top.sizeBudget === undefined ? undefined : f.mapping(top.sizeBudget, ["sizeBudget"]);
  if (budget) f.onlyKeys(budget, ["sizeBudget"], ["percent"]);
  const sizeBudgetPercent = budget ? f.integer(budget.percent, ["sizeBudget", "percent"]) : undefined;
  return {
    ...(sizeBudgetPercent !== undefined ? { sizeBudgetPercent } : {}),
    name: f.string(top.name, ["name"], NAME, "lowercase letters, digits and '-'"),
    description: f.optionalString(top.description, ["description"]) ?? "",
    file: path,
    arch: "x86_64",
    kernelProfile: f.string(kernel.profile, ["kernel", "profile"], NAME),
    kernelExtraConfig: f
      .list(kernel.extraConfig, ["kernel", "extraConfig"])
      .map((p, i) => resolve(dirname(path), f.string(p, ["kernel", "extraConfig", i]))),
    packages: f.list(top.packages, ["packages"]).map((p, i) => f.string(p, ["packages", i])),
    cmdline,
    hardeningDecisions: decisions,
  };
}
