import { lstatSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { pacer } from "../core/pace.ts";
import { BronzeError, InputError } from "../core/errors.ts";
import { run } from "../core/exec.ts";
import { withKernelBuildLock } from "../core/machine-lock.ts";
import { inputKey, recipeDigest, sha256 } from "../core/hash.ts";
import { ownedName, removeOrphans } from "../core/ownership.ts";
import { overlayUpper, runSandboxed, shellQuote, type Mount, type SandboxOptions } from "../core/sandbox.ts";
import { toolVersions, type ToolSpec } from "../core/tools.ts";
import { extractSource } from "../pkgs/build.ts";
import type { PackageDef } from "../pkgs/schema.ts";
import { fetchSource, type VerifiedSource } from "../sources/fetch.ts";
import type { CompiledTree, CompileRecord, KernelContext } from "./compile-cache.ts";
import { describeMismatches, parseDotConfig, renderSettings, unmetSettings, type ConfigMismatch, type ConfigSetting, type Fragment } from "./config.ts";
import { kconfigDefinitions, offSymbols } from "./kconfig-deps.ts";
import { findPrivateKeys } from "./key-scan.ts";
import type { KernelSource } from "./source.ts";
import { archNamed, crossPrefix, crossTools } from "../core/arch.ts";

const KERNEL_TOOLS: readonly ToolSpec[] = ["gcc", "ld", "make", "bc", "flex", "bison", ["openssl", "version"], "depmod"];

/** The tools whose versions key a kernel for `arch`: the host's (its build programs) and the cross toolchain. */
export const kernelTools = (arch: string): ToolSpec[] => [...KERNEL_TOOLS, ...crossTools(archNamed(arch))];

/** The make targets of a kernel tree's compile (and of its relink when sealed): the boot image and the modules. */
export const kernelTargets = (arch: string): string => `${archNamed(arch).kernelTarget} modules`;

/**
 * The certificate the kernel embeds, in the tree (public). A compile embeds a placeholder whose private
 * key was never written anywhere; sealing writes the real certificate here, and Kbuild relinks what embeds it.
 */
export const CERT_FILE = "module-signing-cert.pem";

/** CONFIG_MODULE_SIG_KEY: where the kernel build takes the certificate to embed from; the same for every key. */
export const SIGNING_CERT_SETTING: Fragment = { file: "(bronze: module-signing certificate)", text: `CONFIG_MODULE_SIG_KEY="/build/${CERT_FILE}"\n` };

/** An out-of-tree module package and its verified sources. */
export interface ModuleSources {
  def: PackageDef;
  sources: VerifiedSource[];
}

/** Where an out-of-tree module's sources sit in the kernel tree, as the sandbox sees it. */
export const moduleDir = (name: string): string => `/build/ext/${name}`;

/** Checks on the resolved .config, run before anything compiles; on a compiled tree, on its recorded config. */
export type ConfigGate = (dotConfig: string) => void | Promise<void>;

/** What one compile needs: everything but a key. */
export interface CompileSpec {
  arch: string;
  profile: string;
  settings: readonly ConfigSetting[];
  modules: readonly ModuleSources[];
  extensionModules: readonly ModuleSources[];
}

/**
 * A kernel tree as the sandbox sees it at /build: a directory it writes, or a read-only one (a compiled tree,
 * the unpacked source) whose changes land apart, in `changes` (see overlayUpper).
 */
export type KernelTree = string | { readOnly: string; changes: string };

/** Where a tree's sources are read, and where what the build wrote is, on the host. */
function hostView(tree: KernelTree): { sources: string; written: string } {
  return typeof tree === "string" ? { sources: tree, written: tree } : { sources: tree.readOnly, written: overlayUpper(tree.changes) };
}

/**
 * The sandbox of every make in a kernel tree (mounted at /build, with `extra` mounts besides): one environment
 * and one compiler seed, so that a recompile or a seal sees the command lines of the compile it continues.
 */
export function treeSandbox(source: KernelSource, arch: string, jobs: number, tree: KernelTree, logFile: string, extra: readonly Mount[] = []): SandboxOptions {
  const env = {
    KCFLAGS: `-frandom-seed=${kernelSeeds(source, arch).compiler}`,
    ARCH: archNamed(arch).kernel,
    CROSS_COMPILE: crossPrefix(archNamed(arch)),
    KBUILD_BUILD_TIMESTAMP: `@${source.sourceDateEpoch}`,
    KBUILD_BUILD_USER: "bronze",
    KBUILD_BUILD_HOST: "bronze",
    KBUILD_BUILD_VERSION: "1",
    JOBS: String(jobs),
  };
  const cwd = "/build/linux";
  if (typeof tree === "string") return { cwd, env, logFile, mounts: [{ host: tree, at: "/build", writable: true }, ...extra] };
  return { cwd, env, logFile, mounts: extra, overlays: [{ lower: tree.readOnly, changes: tree.changes, at: "/build" }] };
}

/**
 * The kernel build's own randomness, derived from the source and the arch so the same inputs make the same
 * kernel, and a config change keeps every other object: the randstruct layout seed and the latent-entropy
 * plugin's constants (gcc's -frandom-seed). Both are as public as the inputs: a kernel others can rebuild
 * bit for bit cannot keep its struct layout secret.
 */
function kernelSeeds(source: KernelSource, arch: string): { randstruct: string; compiler: string } {
  const of = `${source.pin.sha256} ${arch}`;
  return { randstruct: sha256(`bronze randstruct seed ${of}`), compiler: sha256(`bronze compiler seed ${of}`).slice(0, 16) };
}

/** Replaces the tree's seed generator (which reads /dev/urandom) with one that writes the derived seed. */
async function useDerivedRandstructSeed(tree: string, seed: string): Promise<void> {
  const script = [
    "#!/bin/sh",
    "# written by bronze: the seed is derived from the build's inputs (reproducible builds)",
    `SEED=${seed}`,
    'echo "$SEED" > "$1"',
    'HASH=$(printf %s "$SEED" | sha256sum | cut -d" " -f1)',
    'printf \'#define RANDSTRUCT_HASHED_SEED "%s"\\n\' "$HASH" > "$2"',
    "",
  ].join("\n");
  const path = join(tree, "scripts", "gen-randstruct-seed.sh");
  // replaced, not rewritten: in a fresh tree the file is a hard link to the unpacked source's (linkSource)
  await rm(path, { force: true });
  await writeFile(path, script, { mode: 0o755 });
}

/**
 * Copies a kernel tree (compiled, or the unpacked source), timestamps kept (Kbuild decides what to rebuild by them). In the sandbox, so the
 * copy dies with bronze: a killed build leaves no copy running into a directory the next build sweeps.
 */
export async function copyTree(from: string, to: string, logFile: string): Promise<void> {
  const mounts = [
    { host: from, at: "/from" },
    { host: to, at: "/to", writable: true },
  ];
  await runSandboxed("cp -a /from/. /to", { mounts, cwd: "/", env: {}, logFile });
}

/**
 * A fresh tree's sources as hard links to the unpacked source's files: Kbuild adds files beside the sources
 * and never writes into one, so linking takes seconds where copying 1.5 GB took over a minute of the disk.
 * In the sandbox (see copyTree), with `within` (the directory both are in) mounted once: a link cannot
 * cross mounts. Returns when the links were made: from then on, a change to a linked file is a change to
 * the unpacked source.
 */
export async function linkSource(source: string, to: string, within: string, logFile: string): Promise<number> {
  const inside = (path: string) => `/trees/${shellQuote(relative(within, path))}`;
  await runSandboxed(`cp -al ${inside(source)}/. ${inside(to)}`, { mounts: [{ host: within, at: "/trees", writable: true }], cwd: "/", env: {}, logFile });
  return Date.now();
}

/**
 * Refuses a compile that changed a file it shares with the unpacked source (a hard link whose content was
 * modified after `linkedAt`): the unpacked source is no longer the verified one, so it is removed and unpacked
 * again by the next build. By modification time, not change time: another build's tree linking or removing
 * its links to the same source changes every shared inode's ctime, and is no write.
 */
export async function assertSourceUntouched(tree: string, linkedAt: number, discardSource: () => Promise<void>): Promise<void> {
  const changed: string[] = [];
  const pace = pacer();
  for (const entry of await readdir(tree, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const info = lstatSync(path, { throwIfNoEntry: false });
    if (info && info.nlink > 1 && info.mtimeMs > linkedAt) changed.push(relative(tree, path));
    await pace();
  }
  if (!changed.length) return;
  await discardSource();
  throw new BronzeError(
    `the kernel compile wrote into ${changed.length} source file(s) it shares with the unpacked kernel source (${changed.slice(0, 5).join(", ")}); ` +
      "the unpacked source was removed (the next build unpacks it again) and this compile is not kept",
  );
}

/**
 * The verified kernel source unpacked (as `linux/`) once per machine, read-only to every build: the lower layer
 * of each config resolution and the start of each cold compile. Without the selftests: no kernel build uses
 * them, and they ship an example private key (SGX's) that would sit in every tree.
 */
export async function unpackedSource(source: KernelSource, ctx: KernelContext, logFile: string): Promise<string> {
  return ctx.compileCache.unpackedSource(source.pin.sha256, async (into) => {
    const verified = await fetchSource(source.pin, { cacheDir: ctx.cacheDir, definedIn: source.file, logFile });
    const tree = join(into, "linux");
    await mkdir(tree, { recursive: true });
    await run("tar", ["-xf", verified.path, "-C", tree, "--strip-components=1", "--no-same-owner", "--exclude=tools/testing/selftests"], { logFile });
  });
}

/** Resolves the merged fragments with allnoconfig; every option a fragment sets must keep its value. */
export async function resolveConfig(sandbox: SandboxOptions, tree: KernelTree, spec: { arch: string; settings: readonly ConfigSetting[]; profile: string }): Promise<string> {
  const { settings, profile } = spec;
  const { sources, written } = hostView(tree);
  await mkdir(written, { recursive: true });
  await writeFile(join(written, "fragments.config"), renderSettings(settings));
  await runSandboxed("make KCONFIG_ALLCONFIG=/build/fragments.config allnoconfig", sandbox);
  const dotConfig = await readFile(join(written, "linux", ".config"), "utf8");
  const mismatches = unmetSettings(settings, dotConfig);
  if (mismatches.length) {
    const explain = unmetExplainer(join(sources, "linux"), archNamed(spec.arch).kernel, mismatches, dotConfig);
    throw new InputError(
      `kernel config for profile '${profile}': ${mismatches.length} option(s) did not take effect:\n${describeMismatches(mismatches, explain)}`,
    );
  }
  return dotConfig;
}

/** The settings resolved on the unpacked source (an overlay: nothing is copied), as resolveConfig does. */
export async function resolveOnSource(source: KernelSource, arch: string, settings: readonly ConfigSetting[], profile: string, ctx: KernelContext, logFile: string): Promise<string> {
  const changes = join(ctx.workDir, "kernel-config", ownedName(profile));
  await removeOrphans(dirname(changes));
  try {
    const tree = { readOnly: await unpackedSource(source, ctx, logFile), changes };
    return await resolveConfig(treeSandbox(source, arch, ctx.jobs, tree, logFile), tree, { arch, settings, profile });
  } finally {
    await rm(changes, { recursive: true, force: true });
  }
}

/** Explains each mismatch from the tree's Kconfig files: the conditions that are off, or no such option. */
function unmetExplainer(tree: string, kernelArch: string, mismatches: readonly ConfigMismatch[], dotConfig: string): (m: ConfigMismatch) => string {
  const read = (path: string): string | undefined => {
    try {
      return readFileSync(join(tree, path), "utf8");
    } catch {
      return undefined;
    }
  };
  const symbols = new Set(mismatches.map((m) => m.setting.option.replace(/^CONFIG_/, "")));
  const definitions = kconfigDefinitions(read, kernelArch, symbols);
  const values = parseDotConfig(dotConfig);
  return (m) => {
    const defs = definitions.get(m.setting.option.replace(/^CONFIG_/, "")) ?? [];
    if (defs.length === 0) return "no such option in this kernel";
    if (m.actual !== "n") return "forced by another option that selects it or limits it";
    const off = [...new Set(defs.flatMap((d) => offSymbols(d.conditions, values)))];
    const where = defs.map((d) => `${d.file}:${d.line}`).join(", ");
    return off.length ? `unmet dependency: needs ${off.map((o) => `CONFIG_${o}`).join(", ")}, which ${off.length > 1 ? "are" : "is"} off; see ${where}` : `unmet dependency; see ${where}`;
  };
}

/**
 * A certificate to embed until the kernel is sealed. Its private key goes to /dev/null: no key that could
 * sign anything exists, so a compiled tree holds no key material.
 */
async function writePlaceholderCert(work: string, logFile: string): Promise<void> {
  const args = ["req", "-new", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-keyout", "/dev/null"];
  args.push("-subj", "/CN=bronze placeholder: replaced when the kernel is sealed", "-days", "1", "-set_serial", "1", "-out", join(work, CERT_FILE));
  await run("openssl", args, { logFile });
}

const describeModules = (list: readonly ModuleSources[]) => list.map((m) => ({ name: m.def.name, version: m.def.version, sources: m.sources.map((s) => s.digest) }));

/** A compiled tree is kept only if it holds no private key at all (PEM, any kind). */
async function assertNoPrivateKeys(work: string): Promise<void> {
  const found = await findPrivateKeys([work]);
  if (found.length) throw new BronzeError(`the compiled kernel tree holds a private key (${found.join(", ")}); refusing to keep it`);
}

/** What a compile is keyed by, worked out once: its inputs and key, and the key of its family. */
export interface CompilePlan {
  spec: CompileSpec;
  inputs: CompileRecord["inputs"];
  key: string;
  /** the key of everything but the configuration: trees of one family recompile into each other */
  family: string;
}

/** The compile key: source, resolved settings, module sources, toolchain and recipe; never the signing key. */
export async function planCompile(source: KernelSource, spec: CompileSpec): Promise<CompilePlan> {
  const family = {
    step: "kernel compile",
    recipe: await recipeDigest(import.meta.url, new URL("../core/sandbox.ts", import.meta.url).href),
    source: source.pin.sha256,
    arch: spec.arch,
    sourceDateEpoch: source.sourceDateEpoch,
    modules: describeModules(spec.modules),
    extensionModules: describeModules(spec.extensionModules),
    tools: await toolVersions(kernelTools(spec.arch)),
  };
  const inputs = { ...family, config: renderSettings(spec.settings) };
  return { spec, inputs, key: inputKey(inputs), family: inputKey(family) };
}

/**
 * A fresh tree: the verified source (linked) with derived seeds, the module sources and a placeholder
 * certificate. Returns when its sources were linked (see assertSourceUntouched).
 */
async function freshTree(source: KernelSource, spec: CompileSpec, ctx: KernelContext, work: string, logFile: string): Promise<number> {
  const linkedAt = await linkSource(await unpackedSource(source, ctx, logFile), work, ctx.compileCache.root, logFile);
  await useDerivedRandstructSeed(join(work, "linux"), kernelSeeds(source, spec.arch).randstruct);
  for (const m of [...spec.modules, ...spec.extensionModules]) {
    const into = join(work, "ext", m.def.name);
    await mkdir(into, { recursive: true });
    for (const src of m.sources) await extractSource(src, into, logFile);
  }
  await writePlaceholderCert(work, logFile);
  return linkedAt;
}

/**
 * The compiled tree of a plan: from this machine's compile cache, else compiled (objects, vmlinux with a
 * placeholder certificate, modules unsigned) and kept there. A tree of the same family whose settings are
 * close is copied and recompiled: Kbuild rebuilds only what the changed options reach.
 * `onCompile` is told when a compile starts.
 */
export async function compileKernel(source: KernelSource, plan: CompilePlan, ctx: KernelContext, gate?: ConfigGate, onCompile?: () => void): Promise<CompiledTree> {
  const { spec, key } = plan;
  const cached = await ctx.compileCache.lookup(key);
  if (cached) {
    await gate?.(cached.record.config);
    return cached;
  }
  onCompile?.();
  const started = Date.now();
  const logFile = join(ctx.logDir, `kernel-compile-${spec.profile}-${key.slice(0, 12)}.log`);
  await rm(logFile, { force: true });
  const base = await ctx.compileCache.nearest(plan.family, plan.inputs.config);
  // before a compiled tree is copied, the configuration on the unpacked source: one that fails, or that the
  // gate refuses, costs seconds; a fresh tree resolves it once, in the tree
  const checked = base ? await resolveOnSource(source, spec.arch, spec.settings, spec.profile, ctx, logFile) : undefined;
  if (checked !== undefined) await gate?.(checked);
  const { dir, tree } = await ctx.compileCache.begin(key);
  try {
    // a compiled tree is copied: Kbuild rewrites its objects in place
    if (base) await copyTree(base.tree, tree, logFile);
    const linkedAt = base ? undefined : await freshTree(source, spec, ctx, tree, logFile);
    const sandbox = treeSandbox(source, spec.arch, ctx.jobs, tree, logFile);
    // in the tree, where Kbuild keeps what each option's change reaches
    const config = await resolveConfig(sandbox, tree, spec);
    if (checked === undefined) await gate?.(config);
    else if (config !== checked) {
      throw new BronzeError(`kernel config for profile '${spec.profile}': the tree resolved the settings differently from the source it was made from`);
    }
    // the compile itself takes both cores: one at a time on the machine (what comes before it does not wait)
    await withKernelBuildLock(logFile, async () => {
      await runSandboxed(`make -j"$JOBS" ${kernelTargets(spec.arch)}`, sandbox);
      for (const m of [...spec.modules, ...spec.extensionModules]) await runSandboxed(`make -j"$JOBS" M=${moduleDir(m.def.name)} modules`, sandbox);
    });
    if (linkedAt !== undefined) await assertSourceUntouched(tree, linkedAt, () => ctx.compileCache.discardSource(source.pin.sha256));
    await assertNoPrivateKeys(tree);
    const record = { key, family: plan.family, inputs: plan.inputs, config, durationMs: Date.now() - started };
    return await ctx.compileCache.commit(dir, base ? { ...record, derivedFrom: base.key } : record);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
