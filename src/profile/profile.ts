import { DEFAULT_OUTPUTS, isBootMedium, OUTPUTS, type Output } from "../core/outputs.ts";
import { ARCH_NAMES, archNamed, DEFAULT_ARCH } from "../core/arch.ts";
import { access, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";
import { InputError } from "../core/errors.ts";
import { canonicalJson, sha256 } from "../core/hash.ts";
import { FieldReader, YamlFile } from "../core/yamlfile.ts";
import { displayPath } from "../core/paths.ts";
import { DECISIONS, DEFAULT_DECISIONS } from "../harden/gate.ts";
import { entriesDigest, readTree } from "../oci/dir-read.ts";
import { parseReference } from "../registry/reference.ts";
import { SEVERITIES } from "../vuln/cvss.ts";

/** An image profile: profiles/<name>.yaml, the only input of a build besides the tree. */
export interface Profile {
  name: string;
  description: string;
  file: string;
  /** the files it was read from: its own, then its base's, and so on */
  files: string[];
  /** the architecture (core/arch.ts names it in every other vocabulary) */
  arch: string;
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
  /** the profile at the root of the base chain: its rootfs and initramfs are this image's, never re-packed */
  baseImage: string;
  /** out-of-tree module packages the kernel job builds and signs for extensions, kept out of the rootfs */
  kernelExtensionModules: string[];
  /** system extensions layered over the base, in order (the last on top) */
  extensions: ExtensionRef[];
  /** public keys (PEM paths) an extension image's signature must verify with */
  trustedKeys: string[];
  /** extensions (by name) that may be used without a signature by a trusted key */
  allowUnsigned: string[];
  /** Talos-built extension images (by name) admitted: only without kernel modules, their lib/ under usr/lib/ */
  talosExtensions: string[];
  /** the kernel hardening gate's decision groups (kernel-hardening-checker's) */
  hardeningDecisions: readonly string[];
  /** fail a build when an artifact grows by more than this percentage over the previous build of the profile */
  sizeBudgetPercent?: number;
  /** the vulnerability gate on the image's SBOM: advisories (OSV), reviewed decisions (OpenVEX), the failing severity */
  vulnerabilities?: VulnerabilityPolicy;
}

export interface VulnerabilityPolicy {
  failOn: (typeof SEVERITIES)[number];
  advisories: string;
  vex?: string;
}

/** An extension of an image: built by this build from the tree, or an OCI image pinned by digest. */
export type ExtensionRef =
  | { kind: "build"; dir: string }
  | { kind: "image"; source: string; digest: string }
  /** HOST[:PORT]/REPOSITORY@sha256:..., pulled with its signature */
  | { kind: "registry"; reference: string; digest: string };

/** What a profile built on a base may set; the rest (arch, kernel, packages, cmdline, hardening) is the base's. */
/**
 * Every key a profile file may have, once: an image profile's own (the image it builds), a custom profile's
 * (one with `base`, which takes the rest from its base), or both.
 */
const PROFILE_KEYS = {
  name: "both",
  description: "both",
  base: "custom",
  arch: "image",
  kernel: "image",
  packages: "image",
  cmdline: "image",
  hardening: "image",
  sizeBudget: "both",
  vulnerabilities: "both",
  kernelArgs: "both",
  outputs: "both",
  extensions: "both",
  trustedKeys: "both",
  allowUnsigned: "both",
  talosExtensions: "both",
} as const;
const keysOf = (kind: "image" | "custom") => Object.entries(PROFILE_KEYS).filter(([, k]) => k === kind || k === "both").map(([key]) => key);
const IMAGE_KEYS = keysOf("image");
const CUSTOM_KEYS = keysOf("custom");
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const KERNEL_ARG = /^[^\s"]+$|^[^\s"=]+="[^"\n]*"$/;
/** A profile's, an extension's or a package's name: lowercase letters, digits and '-' */
export const NAME = /^[a-z0-9][a-z0-9-]*$/;

export function profilePath(projectRoot: string, nameOrFile: string): string {
  if (nameOrFile.includes("/") || nameOrFile.endsWith(".yaml")) return nameOrFile;
  if (!NAME.test(nameOrFile)) {
    throw new InputError(`profile name '${nameOrFile}' is not valid: use lowercase letters, digits and '-', or a path to a .yaml file`);
  }
  return join(projectRoot, "profiles", `${nameOrFile}.yaml`);
}

/** The profile ID: what the image is made of, not where the files are (config fragments by content). */
async function profileId(p: Omit<Profile, "id" | "file" | "files" | "description">): Promise<string> {
  const fragments = await Promise.all(p.kernelExtraConfig.map(async (f) => sha256(await readFile(f))));
  const keys = await Promise.all(p.trustedKeys.map(async (f) => sha256(await readFile(f))));
  const extensions = await Promise.all(p.extensions.map(async (e) => (e.kind === "build" ? { build: entriesDigest(await readTree(e.dir)) } : { image: e.digest })));
  // the gate's data (advisories change every day) decides whether an image ships, not what it is
  return sha256(canonicalJson({ ...p, kernelExtraConfig: fragments, trustedKeys: keys, extensions, base: undefined, vulnerabilities: undefined }));
}

export async function loadProfile(path: string, seen: readonly string[] = []): Promise<Profile> {
  if (seen.includes(resolve(path))) throw new InputError(`${displayPath(path)}: profiles base on each other in a cycle: ${[...seen, path].map(displayPath).join(" -> ")}`);
  const yaml = await YamlFile.load(path);
  const f = new FieldReader(yaml);
  const top = f.mapping(yaml.data, []);
  if (top.base !== undefined) return loadCustomProfile(path, yaml, f, top, [...seen, resolve(path)]);
  f.onlyKeys(top, [], IMAGE_KEYS);
  const kernel = f.mapping(top.kernel, ["kernel"]);
  f.onlyKeys(kernel, ["kernel"], ["profile", "extraConfig", "extensionModules"]);
  const arch = f.string(top.arch, ["arch"]);
  if (!ARCH_NAMES.includes(arch)) {
    throw yaml.error(["arch"], `arch '${arch}' is not supported; supported: ${ARCH_NAMES.join(", ")}`);
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
  const vulnerabilities = readVulnerabilities(yaml, f, top, path);
  const kernelArgs = readKernelArgs(yaml, f, top);
  const name = f.string(top.name, ["name"], NAME, "lowercase letters, digits and '-'");
  const resolved = {
    ...(sizeBudgetPercent !== undefined ? { sizeBudgetPercent } : {}),
    ...(vulnerabilities ? { vulnerabilities } : {}),
    ...(await readExtensions(path, yaml, f, top, { extensions: [], trustedKeys: [], allowUnsigned: [], talosExtensions: [] })),
    name,
    baseImage: name,
    kernelExtensionModules: kernel.extensionModules === undefined ? [] : f.list(kernel.extensionModules, ["kernel", "extensionModules"]).map((m, i) => f.string(m, ["kernel", "extensionModules", i], NAME)),
    arch,
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

/**
 * A kernel command line written for one architecture, for another: the serial console is the other's
 * (console=ttyS0,115200 becomes console=ttyAMA0,115200) and the first's own arguments (Arch.kernelArgs)
 * give way to the other's; every other argument stays, in its place.
 */
export function cmdlineForArch(cmdline: string, from: string, to: string): string {
  const [was, becomes] = [archNamed(from), archNamed(to)];
  if (was === becomes) return cmdline;
  const words = cmdline.split(/\s+/).filter((w) => w !== "" && !was.kernelArgs.includes(w));
  const moved = words.map((w) => w.replace(new RegExp(`^console=${was.serialConsole}(?=,|$)`), `console=${becomes.serialConsole}`));
  return [...moved, ...becomes.kernelArgs.filter((a) => !moved.includes(a))].join(" ");
}

/**
 * The profile built for another architecture (`bronze build --arch`): the same image, its command line
 * moved to that architecture (cmdlineForArch), and its own ID; the kernel profile's fragments are merged
 * with that architecture's (kernel/config/<arch>.config, hardening-<arch>.config).
 */
export async function profileForArch(profile: Profile, arch: string): Promise<Profile> {
  if (!ARCH_NAMES.includes(arch)) throw new InputError(`--arch ${arch}: not an architecture bronze builds; use one of ${ARCH_NAMES.join(", ")}`);
  if (arch === profile.arch) return profile;
  // the ID is of what defines the image, as finish() computes it: not the file it was read from
  const { id, file, files, description, ...resolved } = profile;
  void id;
  const moved = { ...resolved, arch, cmdline: cmdlineForArch(profile.cmdline, profile.arch, arch) };
  return { ...moved, file, files, description, id: await profileId(moved) };
}

/** Where a build of the profile publishes, under _out/: the name, and for an arch other than the default its OCI name too. */
export const outputDirName = (profile: Pick<Profile, "name" | "arch">): string => (profile.arch === DEFAULT_ARCH.name ? profile.name : `${profile.name}-${archNamed(profile.arch).oci}`);

/** The resolved profile with what does not define the image: its file, description, and the ID of what does. */
async function finish(path: string, f: FieldReader, top: Record<string, unknown>, resolved: Omit<Profile, "id" | "file" | "files" | "description">, base?: Profile): Promise<Profile> {
  const description = f.optionalString(top.description, ["description"]) ?? "";
  return { ...resolved, file: path, files: [path, ...(base?.files ?? [])], description, id: await profileId(resolved) };
}

/** `vulnerabilities: {advisories: DIR, vex: FILE, failOn: high}`, paths relative to the profile's file. */
function readVulnerabilities(yaml: YamlFile, f: FieldReader, top: Record<string, unknown>, path: string): VulnerabilityPolicy | undefined {
  if (top.vulnerabilities === undefined) return undefined;
  const v = f.mapping(top.vulnerabilities, ["vulnerabilities"]);
  f.onlyKeys(v, ["vulnerabilities"], ["advisories", "vex", "failOn"]);
  const failOn = v.failOn === undefined ? "high" : f.string(v.failOn, ["vulnerabilities", "failOn"]);
  if (!(SEVERITIES as readonly string[]).includes(failOn)) throw yaml.error(["vulnerabilities", "failOn"], `failOn '${failOn}' is not a severity; use one of ${SEVERITIES.join(", ")}`);
  const vex = f.optionalString(v.vex, ["vulnerabilities", "vex"]);
  return {
    failOn: failOn as VulnerabilityPolicy["failOn"],
    // a feed in a registry (pinned by digest, or on a host:port) stays a reference; anything else is a path beside the profile
    advisories: ((a) => (/@sha256:|^[^/.][^/]*:\d+\//.test(a) ? a : resolve(dirname(path), a)))(f.string(v.advisories, ["vulnerabilities", "advisories"])),
    ...(vex ? { vex: resolve(dirname(path), vex) } : {}),
  };
}

function readSizeBudget(f: FieldReader, top: Record<string, unknown>): number | undefined {
  const budget = top.sizeBudget === undefined ? undefined : f.mapping(top.sizeBudget, ["sizeBudget"]);
  if (budget) f.onlyKeys(budget, ["sizeBudget"], ["percent"]);
  return budget ? f.integer(budget.percent, ["sizeBudget", "percent"]) : undefined;
}

/** `kernelArgs`: each one argument (name or name=value, a value with spaces quoted). */
export function readKernelArgs(yaml: YamlFile, f: FieldReader, top: Record<string, unknown>): string[] {
  if (top.kernelArgs === undefined) return [];
  return f.list(top.kernelArgs, ["kernelArgs"]).map((a, i) => {
    const arg = f.string(a, ["kernelArgs", i]);
    if (!KERNEL_ARG.test(arg)) throw yaml.error(["kernelArgs", i], `'${arg}' is not one kernel argument: write name or name=value, without spaces (quote a value with spaces as name="a b")`);
    return arg;
  });
}

/** `outputs`, each once (`otherwise` when the file names none); a boot medium needs the installer. */
export function readOutputs(yaml: YamlFile, f: FieldReader, top: Record<string, unknown>, otherwise: readonly Output[]): Output[] {
  if (top.outputs === undefined) return [...otherwise];
  const outputs = f.list(top.outputs, ["outputs"]).map((o, i) => {
    const output = f.string(o, ["outputs", i]);
    if (!(OUTPUTS as readonly string[]).includes(output)) throw yaml.error(["outputs", i], `unknown output '${output}'; use any of ${OUTPUTS.join(", ")}`);
    return output as Output;
  });
  const medium = outputs.find(isBootMedium);
  if (medium && !outputs.includes("installer")) throw yaml.error(["outputs"], `the ${medium} image is made from the installer image: add 'installer' to outputs`);
  if (outputs.length === 0) throw yaml.error(["outputs"], `name at least one output: ${OUTPUTS.join(", ")}`);
  return [...new Set(outputs)];
}

type ExtensionFields = Pick<Profile, "extensions" | "trustedKeys" | "allowUnsigned" | "talosExtensions">;

/** `extensions`, `trustedKeys` and `allowUnsigned`, added to those of the base (paths relative to the profile). */
async function readExtensions(path: string, yaml: YamlFile, f: FieldReader, top: Record<string, unknown>, base: ExtensionFields): Promise<ExtensionFields> {
  const here = dirname(path);
  const written = new Map<number, string>();
  const extensions = top.extensions === undefined ? [] : f.list(top.extensions, ["extensions"]).map((item, i): ExtensionRef => {
    const at = ["extensions", i];
    const entry = f.mapping(item, at);
    if (entry.build !== undefined) {
      f.onlyKeys(entry, at, ["build"]);
      const build = f.string(entry.build, [...at, "build"]);
      return { kind: "build", dir: NAME.test(build) ? join(PROJECT_EXTENSIONS, build) : resolve(here, build) };
    }
    f.onlyKeys(entry, at, ["image", "digest"]);
    if (entry.image === undefined) throw yaml.error(at, "an extension is `build: NAME` (extensions/NAME of this tree) or `image: PATH` with `digest: sha256:...`");
    const image = f.string(entry.image, [...at, "image"]);
    const digest = entry.digest === undefined ? undefined : f.string(entry.digest, [...at, "digest"], DIGEST, "sha256: and 64 lowercase hex digits");
    if (image.includes("@sha256:")) {
      let reference;
      try {
        reference = parseReference(image);
      } catch (e) {
        throw yaml.error([...at, "image"], (e as Error).message);
      }
      if (digest && digest !== reference.digest) throw yaml.error([...at, "digest"], `digest ${digest} is not the one the reference names (${reference.digest ?? ""}); keep one of them`);
      return { kind: "registry", reference: image, digest: reference.digest ?? "" };
    }
    written.set(i, image);
    if (!digest) throw yaml.error(at, `extension image '${image}' is not pinned: add digest: sha256:<hex> (the index digest 'bronze extension build' prints)`);
    return { kind: "image", source: resolve(here, image), digest };
  });
  const trustedKeys = top.trustedKeys === undefined ? [] : f.list(top.trustedKeys, ["trustedKeys"]).map((k, i) => resolve(here, f.string(k, ["trustedKeys", i])));
  for (const [i, key] of trustedKeys.entries()) if (!(await exists(key))) throw yaml.error(["trustedKeys", i], `trusted key ${displayPath(key)} not found`);
  for (const [i, e] of extensions.entries()) {
    const path = e.kind === "build" ? e.dir : e.kind === "image" ? e.source : undefined;
    if (path && !(await exists(path))) {
      // HOST/REPO[:TAG]: a reference that is not pinned, not a path
      const unpinned = /^[a-z0-9-]+(\.[a-z0-9-]+)+(:\d+)?\//.test(written.get(i) ?? "") ? `; a registry reference is pinned by digest: HOST/REPOSITORY@sha256:<hex>` : "";
      throw yaml.error(["extensions", i], `extension ${displayPath(path)} not found${unpinned}`);
    }
  }
  const names = (key: "allowUnsigned" | "talosExtensions") => f.list(top[key], [key]).map((n, i) => f.string(n, [key, i], NAME, "an extension name"));
  return {
    extensions: [...base.extensions, ...extensions],
    trustedKeys: [...new Set([...base.trustedKeys, ...trustedKeys])],
    allowUnsigned: [...new Set([...base.allowUnsigned, ...names("allowUnsigned")])],
    talosExtensions: [...new Set([...base.talosExtensions, ...names("talosExtensions")])],
  };
}

/** Extensions of this tree, named by `build: NAME`. */
const PROJECT_EXTENSIONS = fileURLToPath(new URL("../../extensions", import.meta.url));

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
  const vulnerabilities = readVulnerabilities(yaml, f, top, path) ?? base.vulnerabilities;
  const resolved = {
    ...(vulnerabilities ? { vulnerabilities } : {}),
    arch: base.arch,
    baseImage: base.baseImage,
    kernelProfile: base.kernelProfile,
    kernelExtraConfig: base.kernelExtraConfig,
    kernelExtensionModules: base.kernelExtensionModules,
    ...(await readExtensions(path, yaml, f, top, base)),
    packages: base.packages,
    hardeningDecisions: base.hardeningDecisions,
    ...(sizeBudgetPercent !== undefined ? { sizeBudgetPercent } : {}),
    name: f.string(top.name, ["name"], NAME, "lowercase letters, digits and '-'"),
    base: base.name,
    cmdline: [base.cmdline, ...kernelArgs].join(" "),
    kernelArgs: [...base.kernelArgs, ...kernelArgs],
    outputs: readOutputs(yaml, f, top, base.outputs),
  };
  return finish(path, f, top, resolved, base);
}
