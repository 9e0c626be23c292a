import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BuildContext } from "../build/context.ts";
import { onInterrupt } from "../core/cleanup.ts";
import { BronzeError, InputError } from "../core/errors.ts";
import { run } from "../core/exec.ts";
import { claim } from "../core/ownership.ts";
import { inputKey, recipeDigest, sha256 } from "../core/hash.ts";
import { runSandboxed, type Mount, type SandboxOptions } from "../core/sandbox.ts";
import { toolVersions, type ToolSpec } from "../core/tools.ts";
import { displayPath } from "../core/yamlfile.ts";
import { extractSource } from "../pkgs/build.ts";
import type { PackageDef } from "../pkgs/schema.ts";
import { fetchSource, type VerifiedSource } from "../sources/fetch.ts";
import {
  describeMismatches,
  mergeFragments,
  parseDotConfig,
  renderSettings,
  unmetSettings,
  type ConfigMismatch,
  type ConfigSetting,
  type Fragment,
} from "./config.ts";
import { kconfigDefinitions, offSymbols } from "./kconfig-deps.ts";
import { findPrivateKeys, keyNeedles } from "./key-scan.ts";
import { describeVerdict, verifyModuleTree } from "./module-sig.ts";
import { createEphemeralKey, destroyKey, KEY_FILE, removeLeftoverKeys, type EphemeralKey } from "./signing-key.ts";
import type { KernelSource } from "./source.ts";
import type { SuppliedKey } from "./supplied-key.ts";

/** A kernel and its modules, built together with one ephemeral signing key: one cache unit. */
export interface KernelArtifact {
  kind: "kernel";
  profile: string;
  key: string;
  release: string;
  /** the EFI-stub boot image (bzImage) */
  image: string;
  /** tree holding usr/lib/modules/<release>/ */
  modulesRoot: string;
  /** the resolved .config */
  config: string;
  /** DER certificate of the module-signing key compiled into the kernel */
  signingCert: string;
  signingCertSha256: string;
  /** "ephemeral": made for this build and destroyed; "supplied": the user's own key */
  signingKey: "ephemeral" | "supplied";
  moduleCount: number;
  /** the verified source digests of each out-of-tree module package built with it, by package name */
  moduleSources: Record<string, string[]>;
  /** modules built for extensions, left out of modulesRoot: package name -> tree holding usr/lib/modules/<release>/extra/ */
  extensionModules: Record<string, string>;
}

const KERNEL_TOOLS: readonly ToolSpec[] = ["gcc", "ld", "make", "bc", "flex", "bison", ["openssl", "version"], "depmod"];
/** Where the sandbox sees the signing key: outside the kernel tree (the ephemeral one on tmpfs). */
const KEY_MOUNT = "/keys";
const SUPPLIED_KEY = `${KEY_MOUNT}/module-signing-key.pem`;
/** A supplied key's certificate (public), in the work directory: what the kernel embeds. */
const SUPPLIED_CERT = "module-signing-cert.pem";

/** CONFIG_MODULE_SIG_KEY: the file the kernel build takes the certificate to embed from. */
function signingKeySetting(supplied: SuppliedKey | undefined): Fragment {
  return supplied
    ? { file: "(bronze: supplied module-signing certificate)", text: `CONFIG_MODULE_SIG_KEY="/build/${SUPPLIED_CERT}"\n` }
    : { file: "(bronze: ephemeral module-signing key)", text: `CONFIG_MODULE_SIG_KEY="${KEY_MOUNT}/${KEY_FILE}"\n` };
}

/** What selects a kernel's configuration: fragments common, per arch, hardening, per profile, then extras. */
export interface KernelSpec {
  arch: string;
  profile: string;
  extraConfig: readonly string[];
  /** out-of-tree module packages, built and signed in the same build */
  modules: readonly PackageDef[];
  /** out-of-tree module packages built and signed the same way but installed apart: extensions ship them, the rootfs does not */
  extensionModules?: readonly PackageDef[];
  /** the user's own module-signing key; without it, an ephemeral key is made and destroyed */
  signingKey?: SuppliedKey;
}

/** A profile fragment may start with `# extends: NAME`: NAME's fragments come first. */
const EXTENDS = /^# extends: ([a-z0-9][a-z0-9-]*)\s*$/m;

async function readFragment(path: string, what: string): Promise<Fragment> {
  const text = await readFile(path, "utf8").catch(() => {
    throw new InputError(`kernel config fragment ${displayPath(path)} is missing (${what})`);
  });
  return { file: displayPath(path), text };
}

/** The profile's fragment and those of the profiles it extends, base first. */
async function profileFragments(dir: string, profile: string, seen: readonly string[] = []): Promise<Fragment[]> {
  const fragment = await readFragment(join(dir, "profiles", `${profile}.config`), `kernel profile '${profile}'`);
  const base = EXTENDS.exec(fragment.text)?.[1];
  if (!base) return [fragment];
  if ([...seen, profile].includes(base)) throw new InputError(`${fragment.file}: '# extends: ${base}' makes a loop (${[...seen, profile, base].join(" -> ")})`);
  return [...(await profileFragments(dir, base, [...seen, profile])), fragment];
}

export async function kernelFragments(projectRoot: string, spec: KernelSpec): Promise<Fragment[]> {
  const dir = join(projectRoot, "kernel", "config");
  const what = `profile '${spec.profile}', arch '${spec.arch}'`;
  return [
    await readFragment(join(dir, "common.config"), what),
    await readFragment(join(dir, `${spec.arch}.config`), what),
    await readFragment(join(dir, "hardening.config"), what),
    ...(await profileFragments(dir, spec.profile)),
    ...(await Promise.all(spec.extraConfig.map((path) => readFragment(path, what)))),
  ];
}

async function countModules(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((e) => e.endsWith(".ko")).length;
}

/** How one build signs its modules: what the sandbox sees, and what must never be copied. */
interface ModuleSigner {
  /** mounts for compiling (the ephemeral key file also holds the certificate to embed) */
  compileMounts: Mount[];
  /** mounts and make arguments for modules_install, which signs each module */
  installMounts: Mount[];
  installArgs: string;
  needles: Buffer[];
  /** the last module is signed */
  finish: () => void;
}

async function ephemeralSigner(logFile: string, keep: (key: EphemeralKey) => void): Promise<ModuleSigner> {
  const key = await createEphemeralKey(logFile);
  keep(key);
  const mounts = [{ host: key.dir, at: KEY_MOUNT }];
  // held in memory only, to prove afterwards that no copy of the key was left anywhere
  const needles = keyNeedles(await readFile(key.keyPath, "utf8"));
  return { compileMounts: mounts, installMounts: mounts, installArgs: "", needles, finish: () => destroyKey(key) };
}

/** The user's key is bound read-only for the signing steps only; the compile steps never see it. */
async function suppliedSigner(supplied: SuppliedKey, work: string): Promise<ModuleSigner> {
  await writeFile(join(work, SUPPLIED_CERT), supplied.certPem);
  return {
    compileMounts: [],
    installMounts: [{ host: supplied.keyPath, at: SUPPLIED_KEY }],
    // the kernel takes the key and the certificate from one file; ours come apart, so name the key directly
    installArgs: ` sig-key=${SUPPLIED_KEY}`,
    needles: supplied.needles,
    finish: () => undefined,
  };
}

/**
 * The kernel build's own randomness, derived from its inputs so the same inputs make the same kernel:
 * the randstruct layout seed and the latent-entropy plugin's constants (gcc's -frandom-seed). Both are as
 * public as the inputs: a kernel others can rebuild bit for bit cannot keep its struct layout secret.
 */
function kernelSeeds(cacheKey: string): { randstruct: string; compiler: string } {
  return { randstruct: sha256(`bronze randstruct seed ${cacheKey}`), compiler: sha256(`bronze compiler seed ${cacheKey}`).slice(0, 16) };
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
  await writeFile(join(tree, "scripts", "gen-randstruct-seed.sh"), script, { mode: 0o755 });
}

function kernelEnv(arch: string, source: KernelSource, jobs: number, compilerSeed?: string): Record<string, string> {
  return {
    ...(compilerSeed ? { KCFLAGS: `-frandom-seed=${compilerSeed}` } : {}),
    ARCH: arch === "x86_64" ? "x86" : arch,
    KBUILD_BUILD_TIMESTAMP: `@${source.sourceDateEpoch}`,
    KBUILD_BUILD_USER: "bronze",
    KBUILD_BUILD_HOST: "bronze",
    KBUILD_BUILD_VERSION: "1",
    JOBS: String(jobs),
  };
}

/** A fresh work directory with the verified kernel source unpacked in `linux/`. */
async function extractTree(source: KernelSource, ctx: BuildContext, work: string, logFile: string): Promise<string> {
  const verified = await fetchSource(source.pin, { cacheDir: ctx.cacheDir, definedIn: source.file, logFile });
  const tree = join(work, "linux");
  await rm(work, { recursive: true, force: true });
  await mkdir(tree, { recursive: true });
  await claim(work);
  await run("tar", ["-xf", verified.path, "-C", tree, "--strip-components=1", "--no-same-owner"], { logFile });
  return tree;
}

/** Resolves the merged fragments with allnoconfig; every option a fragment sets must keep its value. */
async function resolveConfig(sandbox: SandboxOptions, work: string, settings: readonly ConfigSetting[], profile: string): Promise<string> {
  await writeFile(join(work, "fragments.config"), renderSettings(settings));
  await runSandboxed("make KCONFIG_ALLCONFIG=/build/fragments.config allnoconfig", sandbox);
  const dotConfig = await readFile(join(work, "linux", ".config"), "utf8");
  const mismatches = unmetSettings(settings, dotConfig);
  if (mismatches.length) {
    const explain = await unmetExplainer(join(work, "linux"), mismatches, dotConfig);
    throw new InputError(
      `kernel config for profile '${profile}': ${mismatches.length} option(s) did not take effect:\n${describeMismatches(mismatches, explain)}`,
    );
  }
  return dotConfig;
}

/** Explains each mismatch from the tree's Kconfig files: the conditions that are off, or no such option. */
async function unmetExplainer(tree: string, mismatches: readonly ConfigMismatch[], dotConfig: string): Promise<(m: ConfigMismatch) => string> {
  const read = (path: string): string | undefined => {
    try {
      return readFileSync(join(tree, path), "utf8");
    } catch {
      return undefined;
    }
  };
  const symbols = new Set(mismatches.map((m) => m.setting.option.replace(/^CONFIG_/, "")));
  const definitions = kconfigDefinitions(read, "x86", symbols);
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

/** The normalised .config of a kernel profile (`bronze kernel config`), without building anything. */
export async function resolveKernelConfig(source: KernelSource, spec: KernelSpec, ctx: BuildContext): Promise<string> {
  const settings = mergeFragments([...(await kernelFragments(ctx.projectRoot, spec)), signingKeySetting(spec.signingKey)]);
  const work = join(ctx.workDir, "kernel-config", `${spec.profile}-${randomBytes(4).toString("hex")}`);
  const logFile = join(ctx.logDir, `kernel-config-${spec.profile}.log`);
  await rm(logFile, { force: true });
  try {
    await extractTree(source, ctx, work, logFile);
    const sandbox = { mounts: [{ host: work, at: "/build", writable: true }], cwd: "/build/linux", env: kernelEnv(spec.arch, source, ctx.jobs), logFile };
    return await resolveConfig(sandbox, work, settings, spec.profile);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Fails if any byte string of the destroyed key survives in the outputs or the kernel tree. */
async function assertNoKeyCopies(needles: readonly Buffer[], outDir: string, tree: string): Promise<void> {
  const leaked = [
    ...(await findPrivateKeys([outDir], { needles })),
    // the kernel source ships an example PEM key of its own: look for this key's bytes only
    ...(await findPrivateKeys([tree], { needles, pemHeaders: false })),
  ];
  if (leaked.length) throw new BronzeError(`the module-signing key was copied to ${leaked.join(", ")}; refusing to cache this build`);
}

/** Fails, naming each one, if any module does not verify against the kernel's certificate. */
async function assertModulesVerify(modulesDir: string, cert: Buffer): Promise<void> {
  const unverified = (await verifyModuleTree(modulesDir, cert)).filter((c) => c.verdict.status !== "ok");
  if (unverified.length) {
    throw new BronzeError(
      `${unverified.length} module(s) do not verify against the kernel's module-signing certificate:\n` +
        unverified.map((c) => `  ${join(modulesDir, c.path)}: ${describeVerdict(c.verdict)}`).join("\n"),
    );
  }
}

interface ModuleSources {
  def: PackageDef;
  sources: VerifiedSource[];
}

/** The directory of a kernel entry holding one tree per extension module package. */
const EXTENSION_MODULES = "extension-modules";

/** Where an out-of-tree module's sources sit in the kernel work directory, as the sandbox sees it. */
const moduleDir = (name: string): string => `/build/ext/${name}`;

/** Checks on the resolved .config, run before anything compiles; on a cached kernel, on its stored config. */
export type ConfigGate = (dotConfig: string) => void | Promise<void>;

export async function buildKernel(source: KernelSource, spec: KernelSpec, ctx: BuildContext, gate?: ConfigGate): Promise<KernelArtifact> {
  const { arch, profile } = spec;
  const settings = mergeFragments([...(await kernelFragments(ctx.projectRoot, spec)), signingKeySetting(spec.signingKey)]);
  const fetchLog = join(ctx.logDir, `kernel-${profile}-sources.log`);
  const fetchModule = (defs: readonly PackageDef[]): Promise<ModuleSources[]> =>
    Promise.all(
      defs.map(async (def) => ({
        def,
        sources: await Promise.all(def.sources.map((pin) => fetchSource(pin, { cacheDir: ctx.cacheDir, definedIn: def.file, logFile: fetchLog }))),
      })),
    );
  const modules = await fetchModule(spec.modules);
  const extensionModules = await fetchModule(spec.extensionModules ?? []);
  const describe = (list: ModuleSources[]) => list.map((m) => ({ name: m.def.name, version: m.def.version, sources: m.sources.map((s) => s.digest) }));
  const inputs = {
    step: "kernel",
    recipe: await recipeDigest(import.meta.url, new URL("../core/sandbox.ts", import.meta.url).href),
    source: source.pin.sha256,
    arch,
    profile,
    config: renderSettings(settings),
    sourceDateEpoch: source.sourceDateEpoch,
    modules: describe(modules),
    // absent when there are none: kernels without them keep their cache keys
    ...(extensionModules.length ? { extensionModules: describe(extensionModules) } : {}),
    // a supplied key is named by its certificate: the same key gives the same kernel
    signingKey: spec.signingKey ? { supplied: spec.signingKey.certSha256 } : "ephemeral",
    tools: await toolVersions(KERNEL_TOOLS),
  };
  const cacheKey = inputKey(inputs);
  const logFile = join(ctx.logDir, `kernel-${profile}-${cacheKey.slice(0, 12)}.log`);
  const artifact = (dir: string, facts: Record<string, string>): KernelArtifact => ({
    kind: "kernel",
    profile,
    key: cacheKey,
    release: facts.release ?? "",
    image: join(dir, "vmlinuz"),
    modulesRoot: join(dir, "modules"),
    config: join(dir, "config"),
    signingCert: join(dir, "module-signing.der"),
    signingCertSha256: facts.signingCertSha256 ?? "",
    signingKey: facts.signingKey === "supplied" ? "supplied" : "ephemeral",
    moduleCount: Number(facts.moduleCount),
    moduleSources: Object.fromEntries([...modules, ...extensionModules].map((m) => [m.def.name, m.sources.map((s) => s.digest)])),
    extensionModules: Object.fromEntries(extensionModules.map((m) => [m.def.name, join(dir, EXTENSION_MODULES, m.def.name)])),
  });

  const cached = await ctx.store.lookup(cacheKey);
  if (cached) {
    await gate?.(await readFile(join(cached.dir, "config"), "utf8"));
    return artifact(cached.dir, cached.record.facts);
  }

  ctx.ran.push(`kernel ${profile}`);
  await rm(logFile, { force: true });
  await removeLeftoverKeys();
  const work = join(ctx.workDir, "kernel", `${profile}-${cacheKey.slice(0, 12)}`);
  const forgetWork = onInterrupt(() => rmSync(work, { recursive: true, force: true }));
  let key: EphemeralKey | undefined;
  try {
    const tree = await extractTree(source, ctx, work, logFile);
    const seeds = kernelSeeds(cacheKey);
    await useDerivedRandstructSeed(tree, seeds.randstruct);
    for (const m of [...modules, ...extensionModules]) {
      const dir = join(work, "ext", m.def.name);
      await mkdir(dir, { recursive: true });
      for (const src of m.sources) await extractSource(src, dir, logFile);
    }
    const entry = await ctx.store.put(cacheKey, `kernel ${profile}`, inputs, async (outDir) => {
      const signer = spec.signingKey ? await suppliedSigner(spec.signingKey, work) : await ephemeralSigner(logFile, (k) => (key = k));
      const base = { cwd: "/build/linux", env: kernelEnv(arch, source, ctx.jobs, seeds.compiler), logFile };
      const mounts: Mount[] = [
        { host: work, at: "/build", writable: true },
        { host: outDir, at: "/out", writable: true },
      ];
      const compile = { ...base, mounts: [...mounts, ...signer.compileMounts] };
      const dotConfig = await resolveConfig(compile, work, settings, profile);
      await gate?.(dotConfig);
      await runSandboxed('make -j"$JOBS" bzImage modules', compile);
      for (const m of [...modules, ...extensionModules]) await runSandboxed(`make -j"$JOBS" M=${moduleDir(m.def.name)} modules`, compile);
      // modules_install signs each module (MODULE_SIG_ALL) and runs depmod over all of them
      const sign = { ...base, mounts: [...mounts, ...signer.installMounts] };
      const install = `INSTALL_MOD_PATH=/out/modules/usr INSTALL_MOD_STRIP=1${signer.installArgs}`;
      await runSandboxed(`make -s modules_install ${install}`, sign);
      for (const m of modules) await runSandboxed(`make -s M=${moduleDir(m.def.name)} modules_install ${install}`, sign);
      // each extension's modules in a tree of their own, without depmod: the image build regenerates the dependency data with the extensions it has
      for (const m of extensionModules) {
        const apart = `INSTALL_MOD_PATH=/out/${EXTENSION_MODULES}/${m.def.name}/usr INSTALL_MOD_STRIP=1 DEPMOD=true${signer.installArgs}`;
        await runSandboxed(`make -s M=${moduleDir(m.def.name)} modules_install ${apart}`, sign);
      }
      // the last module is signed: the key has done its work
      signer.finish();
      await runSandboxed(
        "rm -f /out/modules/usr/lib/modules/*/build /out/modules/usr/lib/modules/*/source && " +
          "cp arch/x86/boot/bzImage /out/vmlinuz && cp .config /out/config && " +
          "cp certs/signing_key.x509 /out/module-signing.der && make -s kernelrelease > /out/release",
        { ...base, mounts },
      );
      await assertNoKeyCopies(signer.needles, outDir, tree);
      const cert = await readFile(join(outDir, "module-signing.der"));
      if (spec.signingKey && sha256(cert) !== spec.signingKey.certSha256) {
        throw new BronzeError(`the kernel embedded a certificate other than ${spec.signingKey.certPath} (sha256 ${sha256(cert)}); refusing to cache this build`);
      }
      await assertModulesVerify(join(outDir, "modules"), cert);
      for (const m of extensionModules) await assertModulesVerify(join(outDir, EXTENSION_MODULES, m.def.name), cert);
      return {
        release: (await readFile(join(outDir, "release"), "utf8")).trim(),
        signingCertSha256: sha256(cert),
        signingKey: spec.signingKey ? "supplied" : "ephemeral",
        moduleCount: String(await countModules(join(outDir, "modules"))),
      };
    });
    return artifact(entry.dir, entry.record.facts);
  } finally {
    if (key) destroyKey(key);
    await rm(work, { recursive: true, force: true });
    forgetWork();
  }
}
