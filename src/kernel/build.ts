import { X509Certificate } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { onInterrupt } from "../core/cleanup.ts";
import { BronzeError, InputError } from "../core/errors.ts";
import { withKernelBuildLock } from "../core/machine-lock.ts";
import { ownedName } from "../core/ownership.ts";
import { inputKey, recipeDigest, sha256 } from "../core/hash.ts";
import { overlayUpper, runSandboxed, type Mount } from "../core/sandbox.ts";
import { displayPath } from "../core/paths.ts";
import type { PackageDef } from "../pkgs/schema.ts";
import { fetchSource } from "../sources/fetch.ts";
import type { CompiledTree } from "./compile-cache.ts";
import {
  CERT_FILE,
  compileKernel,
  kernelTargets,
  moduleDir,
  planCompile,
  SIGNING_CERT_SETTING,
  resolveOnSource,
  treeSandbox,
  type CompileSpec,
  type ConfigGate,
  type ModuleSources,
} from "./compile.ts";
import { mergeFragments, type Fragment } from "./config.ts";
import { findPrivateKeys, keyNeedles } from "./key-scan.ts";
import { describeVerdict, verifyModuleTree } from "./module-sig.ts";
import { createEphemeralKey, destroyKey, KEY_FILE, removeLeftoverKeys, type EphemeralKey } from "./signing-key.ts";
import type { KernelSource } from "./source.ts";
import type { SuppliedKey } from "./supplied-key.ts";
import { cachedStep } from "../core/step.ts";
import type { StoreEntry } from "../core/store.ts";
import { archNamed } from "../core/arch.ts";
import { FILES } from "../core/outputs.ts";
import type { KernelContext } from "./compile-cache.ts";

/** A kernel and its modules, built together with one ephemeral signing key: one cache unit. */
export interface KernelArtifact {
  kind: "kernel";
  profile: string;
  /** the store key of the kernel entry: the same for every seal of the same compile and key kind */
  key: string;
  /**
   * What the steps that hold this kernel's image or modules are keyed by: its entry and the certificate its
   * seal embedded. A kernel sealed again (a new ephemeral key, after its entry was lost) makes them again.
   */
  identity: string;
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

/** Where the sandbox sees the signing key: outside the kernel tree (the ephemeral one on tmpfs). */
const KEY_MOUNT = "/keys";
const SUPPLIED_KEY = `${KEY_MOUNT}/module-signing-key.pem`;

/** What selects a kernel's configuration: fragments common, per arch, hardening (common, per arch), per profile, then extras. */
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
    await readFragment(join(dir, `hardening-${spec.arch}.config`), what),
    ...(await profileFragments(dir, spec.profile)),
    ...(await Promise.all(spec.extraConfig.map((path) => readFragment(path, what)))),
  ];
}

async function countModules(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((e) => e.endsWith(".ko")).length;
}

/** How one build signs its modules: what the signing steps see, and what must never be copied. */
interface ModuleSigner {
  kind: "ephemeral" | "supplied";
  /** the certificate the kernel embeds (PEM), the sha256 of its DER form, and where it comes from */
  certPem: string;
  certSha256: string;
  certOrigin: string;
  /** mounts and make arguments for modules_install, which signs each module */
  installMounts: Mount[];
  installArgs: string;
  needles: Buffer[];
  /** the last module is signed */
  finish: () => void;
}

const CERTIFICATE_PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/;

async function ephemeralSigner(logFile: string, keep: (key: EphemeralKey) => void): Promise<ModuleSigner> {
  const key = await createEphemeralKey(logFile);
  keep(key);
  const pem = await readFile(key.keyPath, "utf8");
  const certPem = CERTIFICATE_PEM.exec(pem)?.[0] ?? "";
  return {
    kind: "ephemeral",
    certPem,
    certSha256: sha256(new X509Certificate(certPem).raw),
    certOrigin: "the ephemeral key's certificate",
    installMounts: [{ host: key.dir, at: KEY_MOUNT }],
    installArgs: ` sig-key=${KEY_MOUNT}/${KEY_FILE}`,
    // held in memory only, to prove afterwards that no copy of the key was left anywhere
    needles: keyNeedles(pem),
    finish: () => destroyKey(key),
  };
}

/** The user's key is bound read-only for the signing steps only; the compile steps never see it. */
function suppliedSigner(supplied: SuppliedKey): ModuleSigner {
  return {
    kind: "supplied",
    certPem: supplied.certPem,
    certSha256: supplied.certSha256,
    certOrigin: supplied.certPath,
    installMounts: [{ host: supplied.keyPath, at: SUPPLIED_KEY }],
    installArgs: ` sig-key=${SUPPLIED_KEY}`,
    needles: supplied.needles,
    finish: () => undefined,
  };
}

/** The normalised .config of a kernel profile (`bronze kernel config`), without building anything. */
export async function resolveKernelConfig(source: KernelSource, spec: KernelSpec, ctx: KernelContext): Promise<string> {
  const settings = mergeFragments([...(await kernelFragments(ctx.projectRoot, spec)), SIGNING_CERT_SETTING]);
  const logFile = join(ctx.logDir, `kernel-config-${spec.profile}.log`);
  await rm(logFile, { force: true });
  return resolveOnSource(source, spec.arch, settings, spec.profile, ctx, logFile);
}

/**
 * Fails if any byte string of the destroyed key survives in the outputs or in a file of the kernel tree that
 * the seal wrote (its overlay's changes: the compiled tree beneath is read-only, and no key reached it).
 */
async function assertNoKeyCopies(needles: readonly Buffer[], outDir: string, changes: string): Promise<void> {
  const leaked = await findPrivateKeys([outDir, changes], { needles });
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

/** The directory of a kernel entry holding one tree per extension module package. */
const EXTENSION_MODULES = "extension-modules";

async function fetchModules(defs: readonly PackageDef[], ctx: KernelContext, logFile: string): Promise<ModuleSources[]> {
  return Promise.all(
    defs.map(async (def) => ({
      def,
      sources: await Promise.all(def.sources.map((pin) => fetchSource(pin, { cacheDir: ctx.cacheDir, definedIn: def.file, logFile }))),
    })),
  );
}

interface SealJob {
  source: KernelSource;
  spec: CompileSpec;
  compiled: CompiledTree;
  signer: ModuleSigner;
  /** where the seal's writes to the compiled tree go: the tree is mounted read-only beneath them, at /build */
  changes: string;
  outDir: string;
  logFile: string;
}

/**
 * Seals a compiled tree with one key: the certificate replaces the placeholder, Kbuild rebuilds what embeds
 * it and relinks, modules_install signs every module; then the key's work is done and it is destroyed.
 * The compiled tree is not copied: an overlay keeps the seal's writes apart (a few megabytes).
 */
async function seal(job: SealJob, ctx: KernelContext): Promise<Record<string, string>> {
  const { spec, signer, changes, outDir, logFile } = job;
  const written = overlayUpper(changes);
  await mkdir(written, { recursive: true });
  // newer than the placeholder's extracted certificate: Kbuild re-extracts it and relinks
  await writeFile(join(written, CERT_FILE), signer.certPem);
  const tree = { readOnly: job.compiled.tree, changes };
  const box = treeSandbox(job.source, spec.arch, ctx.jobs, tree, logFile, [{ host: outDir, at: "/out", writable: true }]);
  await runSandboxed(`make -j"$JOBS" ${kernelTargets(spec.arch)}`, box);
  for (const m of [...spec.modules, ...spec.extensionModules]) await runSandboxed(`make -j"$JOBS" M=${moduleDir(m.def.name)} modules`, box);
  // modules_install signs each module (MODULE_SIG_ALL) and runs depmod over all of them
  const sign = { ...box, mounts: [...box.mounts, ...signer.installMounts] };
  // out-of-tree modules go to extra/, where images and extensions look (Kbuild 6.12's default for M= is
  // updates/); in-tree modules_install ignores INSTALL_MOD_DIR
  const installTo = (root: string, more = "") => `INSTALL_MOD_PATH=${root} INSTALL_MOD_DIR=extra INSTALL_MOD_STRIP=1${more}${signer.installArgs}`;
  const install = installTo("/out/modules/usr");
  await runSandboxed(`make -s modules_install ${install}`, sign);
  for (const m of spec.modules) await runSandboxed(`make -s M=${moduleDir(m.def.name)} modules_install ${install}`, sign);
  // each extension's modules in a tree of their own, without depmod: the image build regenerates the dependency data with the extensions it has
  for (const m of spec.extensionModules) {
    const apart = installTo(`/out/${EXTENSION_MODULES}/${m.def.name}/usr`, " DEPMOD=true");
    await runSandboxed(`make -s M=${moduleDir(m.def.name)} modules_install ${apart}`, sign);
  }
  // the last module is signed: the key has done its work
  signer.finish();
  await runSandboxed(
    "rm -f /out/modules/usr/lib/modules/*/build /out/modules/usr/lib/modules/*/source && " +
      `cp ${archNamed(spec.arch).kernelImage} /out/vmlinuz && cp .config /out/config && ` +
      "cp certs/signing_key.x509 /out/module-signing.der && make -s kernelrelease > /out/release",
    box,
  );
  await assertNoKeyCopies(signer.needles, outDir, changes);
  const cert = await readFile(join(outDir, FILES.moduleCert));
  if (sha256(cert) !== signer.certSha256) {
    throw new BronzeError(`the kernel embedded a certificate other than ${signer.certOrigin} (sha256 ${sha256(cert)}); refusing to cache this build`);
  }
  await assertModulesVerify(join(outDir, "modules"), cert);
  for (const m of spec.extensionModules) await assertModulesVerify(join(outDir, EXTENSION_MODULES, m.def.name), cert);
  return {
    release: (await readFile(join(outDir, "release"), "utf8")).trim(),
    signingCertSha256: sha256(cert),
    signingKey: signer.kind,
    moduleCount: String(await countModules(join(outDir, "modules"))),
    compiledIn: String(job.compiled.record.durationMs),
  };
}

/** The kernel as a component: its cache step, the owner of its modules in the rootfs, its SBOM entry. */
export const kernelComponent = (profile: string): string => `kernel ${profile}`;

/**
 * A kernel and its modules, signed with one key: from the store, else sealed from the compiled tree
 * of its configuration (compiled first when this machine has none). A new key costs a seal, not a compile.
 */
export async function buildKernel(source: KernelSource, spec: KernelSpec, ctx: KernelContext, gate?: ConfigGate): Promise<KernelArtifact> {
  const { arch, profile } = spec;
  const settings = mergeFragments([...(await kernelFragments(ctx.projectRoot, spec)), SIGNING_CERT_SETTING]);
  const fetchLog = join(ctx.logDir, `kernel-${profile}-sources.log`);
  const modules = await fetchModules(spec.modules, ctx, fetchLog);
  const extensionModules = await fetchModules(spec.extensionModules ?? [], ctx, fetchLog);
  const plan = await planCompile(source, { arch, profile, settings, modules, extensionModules });
  const inputs = {
    step: "kernel",
    // the compile key covers compile.ts and the sandbox, which the seal uses too
    recipe: await recipeDigest(import.meta.url),
    compile: plan.key,
    profile,
    // a supplied key is named by its certificate: the same key gives the same kernel
    signingKey: spec.signingKey ? { supplied: spec.signingKey.certSha256 } : "ephemeral",
  };
  const artifact = ({ key, dir, record: { facts } }: StoreEntry): KernelArtifact => ({
    kind: "kernel",
    profile,
    key,
    identity: inputKey({ kernel: key, signingCertSha256: facts.signingCertSha256 ?? "" }),
    release: facts.release ?? "",
    image: join(dir, FILES.kernel),
    modulesRoot: join(dir, "modules"),
    config: join(dir, "config"),
    signingCert: join(dir, FILES.moduleCert),
    signingCertSha256: facts.signingCertSha256 ?? "",
    signingKey: facts.signingKey === "supplied" ? "supplied" : "ephemeral",
    moduleCount: Number(facts.moduleCount),
    moduleSources: Object.fromEntries([...modules, ...extensionModules].map((m) => [m.def.name, m.sources.map((s) => s.digest)])),
    extensionModules: Object.fromEntries(extensionModules.map((m) => [m.def.name, join(dir, EXTENSION_MODULES, m.def.name)])),
  });

  const produce = async (outDir: string, cacheKey: string) => {
    const logFile = join(ctx.logDir, `kernel-${profile}-${cacheKey.slice(0, 12)}.log`);
    await rm(logFile, { force: true });
    await removeLeftoverKeys();
    const work = join(ctx.workDir, "kernel", ownedName(`${profile}-${cacheKey.slice(0, 12)}`));
    const forgetWork = onInterrupt(() => rmSync(work, { recursive: true, force: true }));
    let key: EphemeralKey | undefined;
    try {
      await mkdir(work, { recursive: true });
      const changes = join(work, "seal");
      // the key exists for the whole kernel job; the compile steps never see it
      const signer = spec.signingKey ? suppliedSigner(spec.signingKey) : await ephemeralSigner(logFile, (k) => (key = k));
      const compiled = await compileKernel(source, plan, ctx, gate, () => ctx.ran.push(`kernel compile ${profile}`));
      // the compile and the seal each hold the machine's kernel-build lock: two never run at once
      return await withKernelBuildLock(logFile, () => seal({ source, spec: plan.spec, compiled, signer, changes, outDir, logFile }, ctx));
    } finally {
      // before the entry is committed: nothing of the key outlives the seal
      if (key) destroyKey(key);
      await rm(work, { recursive: true, force: true });
      forgetWork();
    }
  };
  return cachedStep(ctx, {
    name: kernelComponent(profile),
    inputs,
    produce,
    artifact,
    whenServed: async (entry) => gate?.(await readFile(join(entry.dir, "config"), "utf8")),
    // the seal, and the compile it sealed
    builtMs: (entry) => entry.record.durationMs + Number(entry.record.facts.compiledIn ?? 0),
  });
}
