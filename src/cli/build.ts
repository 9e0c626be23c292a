import type { KeyObject } from "node:crypto";
import { stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { wholeNumberOption } from "./number-option.ts";
import { stampBuild } from "../pipeline/stamp.ts";
import { sourceDateEpoch } from "../core/epoch.ts";
import { InputError } from "../core/errors.ts";
import type { RemoteStore } from "../core/store.ts";
import { projectVersion } from "../core/version.ts";
import type { SuppliedKey } from "../kernel/supplied-key.ts";
import { parseReference, type Reference } from "../registry/reference.ts";
import type { SecureBootSigner } from "../secureboot/signer.ts";
import type { PcrSigner } from "../uki/pcr.ts";
import { connect, connectionOptions, type ConnectionOptions } from "./oci.ts";
import { FILES } from "../core/outputs.ts";
import { ARCH_NAMES } from "../core/arch.ts";
import type { BuildResult } from "../pipeline/pipeline.ts";
import type { CliEnv } from "./commands.ts";

function humanSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let size = bytes;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit++;
  }
  return `${unit === 0 ? size : size.toFixed(1)} ${units[unit]}`;
}

const positiveInteger = wholeNumberOption(1, Infinity, "give a whole number of at least 1");

/** Two options that only work together: whether both were given; one alone is a usage error naming the other. */
function bothOrNeither(a: [string | undefined, string], b: [string | undefined, string], what: string): [string, string] | undefined {
  const [first, second] = [a[0], b[0]];
  if (first !== undefined && second !== undefined) return [first, second];
  if (first === undefined && second === undefined) return undefined;
  const [given, missing] = first === undefined ? [b[1], a[1]] : [a[1], b[1]];
  throw new InputError(`${given} needs ${missing} too: give ${what}`);
}

/** --module-signing-key and --module-signing-cert come together; the build then says the key is not ephemeral. */
async function suppliedKeyOption(keyOption: string | undefined, certOption: string | undefined): Promise<SuppliedKey | undefined> {
  const given = bothOrNeither([keyOption, "--module-signing-key"], [certOption, "--module-signing-cert"], "the private key (PEM) and its certificate");
  if (!given) return undefined;
  const [key, cert] = given;
  const { loadSuppliedKey } = await import("../kernel/supplied-key.ts");
  const supplied = await loadSuppliedKey(key, cert);
  console.error(
    `bronze: WARNING: modules will be signed with your own key ${supplied.keyPath}. This key is NOT ephemeral: ` +
      "whoever holds it can sign modules that this kernel loads. bronze reads it only in the signing step, read-only, and never copies it.",
  );
  return supplied;
}

interface BuildCommandOptions {
  profile: string;
  arch: string[];
  cacheDir?: string;
  compileCache?: string;
  moduleSigningKey?: string;
  moduleSigningCert?: string;
  secureBootKey?: string;
  secureBootCert?: string;
  secureBootKeyPassphraseFile?: string;
  pcrSigningKey?: string;
  pcrSigningKeyPassphraseFile?: string;
  acceptSizeGrowth?: boolean;
  jobs?: number;
  cacheFrom?: string;
  cacheTo?: string;
  cacheSignKey?: string;
  cacheTrustedKey: string[];
  signKey?: string;
}

/** --cache-from / --cache-to: repositories (no tag: each entry is tagged by its input hash). */
async function sharedCache(opts: BuildCommandOptions & ConnectionOptions): Promise<RemoteStore | undefined> {
  if (opts.cacheSignKey && !opts.cacheTo) throw new InputError("--cache-sign-key needs --cache-to: it signs the entries sent there");
  if (opts.cacheTrustedKey.length && !opts.cacheFrom) throw new InputError("--cache-trusted-key needs --cache-from: it checks the entries taken from there");
  if (!opts.cacheFrom && !opts.cacheTo) return undefined;
  const { RegistryCache, remoteStore } = await import("../cache/remote.ts");
  const { loadSigningKey, loadTrustedKey } = await import("../oci/cosign.ts");
  const signing = {
    key: opts.cacheSignKey ? await loadSigningKey(opts.cacheSignKey, "--cache-sign-key") : undefined,
    trusted: opts.cacheTrustedKey.length ? await Promise.all(opts.cacheTrustedKey.map((k) => loadTrustedKey(k))) : undefined,
  };
  if (opts.cacheFrom && !signing.trusted) {
    console.error("bronze: WARNING: entries from --cache-from are used without checking who made them; give --cache-trusted-key with the public key your CI signs them with (--cache-sign-key)");
  }
  const open = async (text: string | undefined, option: string) => {
    if (!text) return undefined;
    const ref = parseReference(text);
    if (ref.tag || ref.digest) throw new InputError(`${option} ${text}: give a repository without a tag or digest; entries are tagged by their input hash`);
    return new RegistryCache(await connect(ref, opts), ref, (line) => console.log(`bronze: ${line}`), signing);
  };
  return remoteStore(await open(opts.cacheFrom, "--cache-from"), await open(opts.cacheTo, "--cache-to"));
}

/** --secure-boot-key and --secure-boot-cert come together; checked to match before anything builds. */
async function secureBootOption(opts: BuildCommandOptions): Promise<SecureBootSigner | undefined> {
  const given = bothOrNeither([opts.secureBootKey, "--secure-boot-key"], [opts.secureBootCert, "--secure-boot-cert"], "the db signing key (PEM) and its certificate");
  if (!given) return undefined;
  const [key, cert] = given;
  const { loadSigner } = await import("../secureboot/signer.ts");
  return loadSigner(
    { key, cert, passphraseFile: opts.secureBootKeyPassphraseFile },
    { key: "--secure-boot-key", cert: "--secure-boot-cert", passphrase: "--secure-boot-key-passphrase-file" },
  );
}

async function pcrSignerOption(opts: BuildCommandOptions): Promise<PcrSigner | undefined> {
  if (!opts.pcrSigningKey) {
    if (opts.pcrSigningKeyPassphraseFile) throw new InputError("--pcr-signing-key-passphrase-file needs --pcr-signing-key: give the key it unlocks");
    return undefined;
  }
  const { loadPcrSigner } = await import("../secureboot/signer.ts");
  return loadPcrSigner({ key: opts.pcrSigningKey, passphraseFile: opts.pcrSigningKeyPassphraseFile });
}

/**
 * Whether a build of these options may be answered from its stamp next time: not with keys (a signature
 * is made each time, and a key file is no input the stamp follows) nor with a shared cache (the build
 * also fills it) nor when told to accept growth.
 */
function stampable(opts: BuildCommandOptions): boolean {
  const { moduleSigningKey, moduleSigningCert, secureBootKey, secureBootCert, secureBootKeyPassphraseFile, pcrSigningKey, pcrSigningKeyPassphraseFile } = opts;
  const keys = [moduleSigningKey, moduleSigningCert, secureBootKey, secureBootCert, secureBootKeyPassphraseFile, pcrSigningKey, pcrSigningKeyPassphraseFile];
  return keys.every((k) => k === undefined) && !opts.signKey && !opts.acceptSizeGrowth && !opts.cacheFrom && !opts.cacheTo;
}

/** --arch, each architecture once (a name given twice is a usage error). */
function distinctArches(given: readonly string[]): string[] {
  const twice = given.find((arch, i) => given.indexOf(arch) !== i);
  if (twice) throw new InputError(`--arch ${twice} is given twice: name each architecture once`);
  return [...given];
}

/** Every build run to its end even when another fails (none is cut off holding its key); then the first failure. */
async function everyBuild<T>(builds: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(builds);
  const failed = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
  for (const other of failed.slice(1)) console.error(`bronze: ${other.reason instanceof Error ? other.reason.message : String(other.reason)}`);
  if (failed[0]) throw failed[0].reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

const ranLine = (ran: readonly string[]): string => `${ran.length} build step(s) ran${ran.length ? `: ${ran.join(", ")}` : " (everything from cache)"}`;

/** What a build made: the kernel, the rootfs, the keys it was signed with, the gate's verdict and each file's size. */
function buildSummary(result: BuildResult, keys: { moduleSigningKey?: SuppliedKey; secureBootSigner?: SecureBootSigner; pcrSigner?: PcrSigner }): string[] {
  const summary = [
    `kernel ${result.kernel.release}: ${result.kernel.moduleCount} module(s), signing certificate sha256 ${result.kernel.signingCertSha256}`,
    `rootfs: ${result.executables.length} executable(s): ${result.executables.map((p) => `/${p}`).join(", ")}`,
  ];
  if (keys.moduleSigningKey) summary.push(`modules signed with ${keys.moduleSigningKey.keyPath}: not ephemeral; keep it safe`);
  if (keys.pcrSigner) summary.push(`measured boot: ${FILES.uki} signs its PCR 11 for each boot phase (.pcrsig) with the key whose public half it carries (.pcrpkey)`);
  if (keys.secureBootSigner) summary.push(`Secure Boot: uki.signed.efi and systemd-boot.signed.efi signed for the db certificate sha256 ${keys.secureBootSigner.certificateSha256}`);
  const h = result.hardening.summary;
  summary.push(
    `hardening gate passed (${result.hardening.decisions.join(", ")}): ${h.checks} checks, OK ${h.ok}, FAIL ${h.fail} ` +
      `(${h.suppressed} by reviewed exceptions, ${h.ungatedFail} in groups not gated); every verdict in ${join(result.outDir, FILES.hardening)}`,
  );
  for (const file of result.files) summary.push(`  ${file.path.padEnd(48)} ${humanSize(file.size).padStart(10)}`);
  return summary;
}

/** --sign-key: the installer layout and tar in `dir` signed and attested; a line for each. */
async function signInstaller(dir: string, key: KeyObject, epoch: number): Promise<string[]> {
  const { signLayout } = await import("../attest/layout.ts");
  const lines: string[] = [];
  for (const name of [FILES.installerLayout, FILES.installerTar]) {
    const path = join(dir, name);
    if (!(await stat(path).catch(() => undefined))) continue;
    const signed = await signLayout(path, key, epoch, true);
    lines.push(`${name}@${signed.digest}: signed and attested (${signed.stored} of ${signed.claims} statements added)`);
  }
  return lines;
}

/** `bronze build`: a profile's image into _out/<profile>/; `commandLine` names the build's stamp (pipeline/stamp.ts). */
export function registerBuildCommand(program: Command, { projectRoot, commandLine }: CliEnv): void {
  connectionOptions(program
    .command("build")
    .description("build an image profile: packages, kernel, rootfs.sqsh, initramfs and UKI, into _out/<profile>/")
    .option("-p, --profile <name|file>", "profile name (profiles/<name>.yaml) or path to a profile file", "minimal")
    .option(
      "--arch <arch>",
      `build the profile for this architecture (${ARCH_NAMES.join(", ")}; default: the profile's), cross-built when it is not the host's; published in _out/NAME-ARCH. ` +
        "Repeat it to build a release for several at once: their steps share --jobs, and _out/NAME-index/ holds the installer index over them",
      (value: string, all: string[]) => [...all, value],
      [] as string[],
    )
    .option("--cache-dir <dir>", "content-addressed cache (default: .cache/bronze, or $BRONZE_CACHE)")
    .option("--compile-cache <dir>", "this machine's compiled kernel trees, sealed with each new key (default: compile/ in the cache directory)")
    .option("--module-signing-key <key>", "sign modules with this PEM private key (yours to keep) instead of an ephemeral one; needs --module-signing-cert")
    .option("--module-signing-cert <cert>", "the certificate (PEM or DER) of --module-signing-key, built into the kernel")
    .option("--secure-boot-key <key>", "also write uki.signed.efi and systemd-boot.signed.efi, Authenticode-signed with this RSA key (PEM); needs --secure-boot-cert")
    .option("--secure-boot-cert <cert>", "the certificate (PEM or DER) of --secure-boot-key, as enrolled in the firmware's db")
    .option("--secure-boot-key-passphrase-file <file>", "passphrase of an encrypted --secure-boot-key")
    .option("--pcr-signing-key <key>", "measured boot: sign the UKI's predicted PCR 11 for each boot phase with this RSA key (PEM), as systemd-measure does (.pcrsig, its public key as .pcrpkey)")
    .option("--pcr-signing-key-passphrase-file <file>", "passphrase of an encrypted --pcr-signing-key")
    .option("--accept-size-growth", "publish even if an artifact grew past the profile's sizeBudget (the new sizes become the reference)")
    .option("-j, --jobs <n>", "build steps (packages, kernel) run at once; each compiles with one job per core (default: the number of cores)", positiveInteger)
    .option("--cache-from <repository>", "shared cache: take missing steps from this registry repository (HOST[:PORT]/REPOSITORY), by input hash")
    .option("--cache-to <repository>", "shared cache: send every step of this build to this registry repository, tagged by input hash")
    .option("--cache-sign-key <key>", "shared cache: sign every entry sent to --cache-to with this ECDSA P-256 key (PEM), as cosign signs images")
    .option("--cache-trusted-key <key>", "shared cache: take from --cache-from only entries signed by this public key (PEM; repeat for more); others are built here", (value: string, all: string[]) => [...all, value], [] as string[])
    .option("--sign-key <key>", "sign the installer (layout and tar) with this ECDSA P-256 key (PEM) and attest it: SLSA provenance, SPDX and CycloneDX SBOMs, as referrers that `bronze push` carries up before the tag")
  ).action(async (opts: BuildCommandOptions & ConnectionOptions) => {
      const startedAt = Date.now();
      const installerKey = opts.signKey ? await (await import("../oci/cosign.ts")).loadSigningKey(opts.signKey, "--sign-key") : undefined;
      const moduleSigningKey = await suppliedKeyOption(opts.moduleSigningKey, opts.moduleSigningCert);
      const secureBootSigner = await secureBootOption(opts);
      const pcrSigner = await pcrSignerOption(opts);
      const { loadProfile, profileForArch, profilePath } = await import("../profile/profile.ts");
      const { createContext } = await import("../pipeline/context.ts");
      const { buildProfile } = await import("../pipeline/pipeline.ts");
      const loaded = await loadProfile(profilePath(projectRoot, opts.profile));
      const arches = distinctArches(opts.arch);
      const profiles = arches.length ? await Promise.all(arches.map((arch) => profileForArch(loaded, arch))) : [loaded];
      const [epoch, version, remote] = [await sourceDateEpoch(projectRoot), await projectVersion(projectRoot), await sharedCache(opts)];
      // a release for several architectures: their steps side by side, within one budget
      const { JobBudget } = await import("../pipeline/graph.ts");
      const sharedBudget = profiles.length > 1 ? new JobBudget(opts.jobs ?? availableParallelism()) : undefined;
      const options = { moduleSigningKey, secureBootSigner, pcrSigner, acceptSizeGrowth: Boolean(opts.acceptSizeGrowth), jobs: opts.jobs, sharedBudget, connect: (ref: Reference) => connect(ref, opts) };
      const builds = await everyBuild(
        profiles.map(async (profile) => {
          const ctx = createContext(projectRoot, epoch, opts.cacheDir, opts.compileCache);
          ctx.store.remote = remote;
          return { ctx, result: await buildProfile(profile, ctx, version, options) };
        }),
      );
      for (const { ctx, result } of builds) {
        const summary = buildSummary(result, { moduleSigningKey, secureBootSigner, pcrSigner });
        if (installerKey) summary.push(...(await signInstaller(result.outDir, installerKey, ctx.epoch)));
        console.log(`\nbronze: built profile '${result.profile.name}'${arches.length > 1 ? ` for ${result.profile.arch}` : ""} in ${(result.durationMs / 1000).toFixed(1)} s; ${ranLine(result.ran)}`);
        for (const line of summary) console.log(line);
        if (builds.length === 1 && stampable(opts)) await stampBuild(commandLine, startedAt, { projectRoot, profile: result.profile, entries: [...ctx.store.used], outDir: result.outDir, cacheDir: ctx.cacheDir }, summary);
      }
      if (builds.length > 1) {
        const { indexDirName, publishInstallerIndex } = await import("../pipeline/release-index.ts");
        const dir = join(projectRoot, "_out", indexDirName(loaded.name));
        const index = await publishInstallerIndex(dir, builds.map((b) => b.result.outDir));
        console.log(`\ninstaller index of the release: ${index.digest} (${index.architectures.join(", ")}), in ${join(dir, FILES.installerLayout)} and ${join(dir, FILES.installerTar)}; bronze push takes either`);
        if (installerKey) for (const line of await signInstaller(dir, installerKey, epoch)) console.log(line);
      }
    });
}
