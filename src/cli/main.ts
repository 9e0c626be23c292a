import { stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { boot, BOOT_DEFAULTS, type BootTarget } from "../boot/qemu.ts";
import { projectVersion } from "../core/version.ts";
import { sourceDateEpoch } from "../core/epoch.ts";
import { ARCH_NAMES, DEFAULT_ARCH } from "../core/arch.ts";
import { BronzeError, EXIT_FAILURE, EXIT_USAGE, InputError } from "../core/errors.ts";
import { HOST_REQUIREMENTS, missingRequirements } from "../core/tools.ts";
import { registerExtensionCommands } from "./extension.ts";
import { registerHardenCommands } from "./harden.ts";
import { registerKeysCommands, registerSecureBootCommands } from "./secureboot.ts";
import { connect, connectionOptions, registerOciCommands, type ConnectionOptions } from "./oci.ts";
import { parseReference } from "../registry/reference.ts";
import type { RemoteStore } from "../core/store.ts";
import { registerImageCommands } from "./image.ts";
import { registerReproCommand } from "./repro.ts";
import { registerCacheCommands } from "./cache.ts";
import type { SuppliedKey } from "../kernel/supplied-key.ts";
import { stampBuild } from "../pipeline/stamp.ts";
import type { SecureBootSigner } from "../secureboot/signer.ts";

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

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

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("give a number of seconds above 0");
  return n;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("give a whole number of at least 1");
  return n;
}

async function resolveBootTarget(artifact: string): Promise<BootTarget> {
  const info = await stat(artifact).catch(() => {
    throw new InputError(`${artifact}: no such file or directory; give a UKI (.efi) or a build output directory such as _out/minimal`);
  });
  if (info.isFile() && (await (await import("../disk/disk-file.ts")).isGptDisk(artifact))) return { kind: "disk", disk: artifact };
  const uki = info.isDirectory() ? join(artifact, "uki.efi") : artifact;
  await stat(uki).catch(() => {
    throw new InputError(`${artifact}: holds no uki.efi; run 'bronze build' first`);
  });
  return { kind: "uki", uki };
}

/** --module-signing-key and --module-signing-cert come together; the build then says the key is not ephemeral. */
async function suppliedKeyOption(key: string | undefined, cert: string | undefined): Promise<SuppliedKey | undefined> {
  if (!key && !cert) return undefined;
  if (!key || !cert) {
    throw new InputError(`${key ? "--module-signing-key" : "--module-signing-cert"} needs ${key ? "--module-signing-cert" : "--module-signing-key"} too: give the private key (PEM) and its certificate`);
  }
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
  cacheDir?: string;
  compileCache?: string;
  moduleSigningKey?: string;
  moduleSigningCert?: string;
  secureBootKey?: string;
  secureBootCert?: string;
  secureBootKeyPassphraseFile?: string;
  acceptSizeGrowth?: boolean;
  jobs?: number;
  cacheFrom?: string;
  cacheTo?: string;
}

/** --cache-from / --cache-to: repositories (no tag: each entry is tagged by its input hash). */
async function sharedCache(opts: BuildCommandOptions & ConnectionOptions): Promise<RemoteStore | undefined> {
  if (!opts.cacheFrom && !opts.cacheTo) return undefined;
  const { RegistryCache, remoteStore } = await import("../cache/remote.ts");
  const open = async (text: string | undefined, option: string) => {
    if (!text) return undefined;
    const ref = parseReference(text);
    if (ref.tag || ref.digest) throw new InputError(`${option} ${text}: give a repository without a tag or digest; entries are tagged by their input hash`);
    return new RegistryCache(await connect(ref, opts), ref, (line) => console.log(`bronze: ${line}`));
  };
  return remoteStore(await open(opts.cacheFrom, "--cache-from"), await open(opts.cacheTo, "--cache-to"));
}

/** --secure-boot-key and --secure-boot-cert come together; checked to match before anything builds. */
async function secureBootOption(opts: BuildCommandOptions): Promise<SecureBootSigner | undefined> {
  if (!opts.secureBootKey && !opts.secureBootCert) return undefined;
  if (!opts.secureBootKey || !opts.secureBootCert) {
    throw new InputError(`${opts.secureBootKey ? "--secure-boot-key" : "--secure-boot-cert"} needs ${opts.secureBootKey ? "--secure-boot-cert" : "--secure-boot-key"} too: give the db signing key (PEM) and its certificate`);
  }
  const { loadSigner } = await import("../secureboot/signer.ts");
  return loadSigner(
    { key: opts.secureBootKey, cert: opts.secureBootCert, passphraseFile: opts.secureBootKeyPassphraseFile },
    { key: "--secure-boot-key", cert: "--secure-boot-cert", passphrase: "--secure-boot-key-passphrase-file" },
  );
}

/**
 * Whether a build of these options may be answered from its stamp next time: not with keys (a signature
 * is made each time, and a key file is no input the stamp follows) nor with a shared cache (the build
 * also fills it) nor when told to accept growth.
 */
function stampable(opts: BuildCommandOptions): boolean {
  const { moduleSigningKey, moduleSigningCert, secureBootKey, secureBootCert, secureBootKeyPassphraseFile } = opts;
  const keys = [moduleSigningKey, moduleSigningCert, secureBootKey, secureBootCert, secureBootKeyPassphraseFile];
  return keys.every((k) => k === undefined) && !opts.acceptSizeGrowth && !opts.cacheFrom && !opts.cacheTo;
}

/** `commandLine`: the arguments as given, which a build's stamp is filed under (build/stamp.ts). */
export function createProgram(commandLine: readonly string[] = []): Command {
  const program = new Command()
    .name("bronze")
    .description("Builds minimal, immutable Linux OS images: musl userland, read-only SquashFS root, signed kernel modules, UKI.")
    .version("0.1.0")
    .showHelpAfterError()
    .exitOverride();

  connectionOptions(program
    .command("build")
    .description("build an image profile: packages, kernel, rootfs.sqsh, initramfs and UKI, into _out/<profile>/")
    .option("-p, --profile <name|file>", "profile name (profiles/<name>.yaml) or path to a profile file", "minimal")
    .option("--cache-dir <dir>", "content-addressed cache (default: .cache/bronze, or $BRONZE_CACHE)")
    .option("--compile-cache <dir>", "this machine's compiled kernel trees, sealed with each new key (default: compile/ in the cache directory)")
    .option("--module-signing-key <key>", "sign modules with this PEM private key (yours to keep) instead of an ephemeral one; needs --module-signing-cert")
    .option("--module-signing-cert <cert>", "the certificate (PEM or DER) of --module-signing-key, built into the kernel")
    .option("--secure-boot-key <key>", "also write uki.signed.efi and systemd-boot.signed.efi, Authenticode-signed with this RSA key (PEM); needs --secure-boot-cert")
    .option("--secure-boot-cert <cert>", "the certificate (PEM or DER) of --secure-boot-key, as enrolled in the firmware's db")
    .option("--secure-boot-key-passphrase-file <file>", "passphrase of an encrypted --secure-boot-key")
    .option("--accept-size-growth", "publish even if an artifact grew past the profile's sizeBudget (the new sizes become the reference)")
    .option("-j, --jobs <n>", "build steps (packages, kernel) run at once; each compiles with one job per core (default: the number of cores)", positiveInteger)
    .option("--cache-from <repository>", "shared cache: take missing steps from this registry repository (HOST[:PORT]/REPOSITORY), by input hash")
    .option("--cache-to <repository>", "shared cache: send every step of this build to this registry repository, tagged by input hash")
  ).action(async (opts: BuildCommandOptions & ConnectionOptions) => {
      const startedAt = Date.now();
      const moduleSigningKey = await suppliedKeyOption(opts.moduleSigningKey, opts.moduleSigningCert);
      const secureBootSigner = await secureBootOption(opts);
      const { loadProfile, profilePath } = await import("../profile/profile.ts");
      const { createContext } = await import("../pipeline/context.ts");
      const profile = await loadProfile(profilePath(projectRoot, opts.profile));
      const ctx = createContext(projectRoot, await sourceDateEpoch(projectRoot), opts.cacheDir, opts.compileCache);
      ctx.store.remote = await sharedCache(opts);
      const { buildProfile } = await import("../pipeline/pipeline.ts");
      const result = await buildProfile(profile, ctx, await projectVersion(projectRoot), { moduleSigningKey, secureBootSigner, acceptSizeGrowth: Boolean(opts.acceptSizeGrowth), jobs: opts.jobs, connect: (ref) => connect(ref, opts) });
      console.log(`\nbronze: built profile '${profile.name}' in ${(result.durationMs / 1000).toFixed(1)} s; ${result.ran.length} build step(s) ran${result.ran.length ? `: ${result.ran.join(", ")}` : " (everything from cache)"}`);
      const summary = [`kernel ${result.kernel.release}: ${result.kernel.moduleCount} module(s), signing certificate sha256 ${result.kernel.signingCertSha256}`];
      if (moduleSigningKey) summary.push(`modules signed with ${moduleSigningKey.keyPath}: not ephemeral; keep it safe`);
      if (secureBootSigner) summary.push(`Secure Boot: uki.signed.efi and systemd-boot.signed.efi signed for the db certificate sha256 ${secureBootSigner.certificateSha256}`);
      const h = result.hardening.summary;
      summary.push(
        `hardening gate passed (${result.hardening.decisions.join(", ")}): ${h.checks} checks, OK ${h.ok}, FAIL ${h.fail} ` +
          `(${h.suppressed} by reviewed exceptions, ${h.ungatedFail} in groups not gated); every verdict in ${join(result.outDir, "hardening.json")}`,
      );
      for (const file of result.files) summary.push(`  ${file.path.padEnd(48)} ${humanSize(file.size).padStart(10)}`);
      for (const line of summary) console.log(line);
      if (stampable(opts)) await stampBuild(commandLine, startedAt, { projectRoot, profile, entries: [...ctx.store.used], outDir: result.outDir, cacheDir: ctx.cacheDir }, summary);
    });

  program
    .command("boot")
    .description("boot a UKI in QEMU (OVMF, serial console) and wait for init's ready line")
    .argument("<artifact>", "a UKI file, a build output directory such as _out/minimal, or a raw disk image (bronze image disk; booted as the machine's disk, so it is written to)")
    .option("--timeout <seconds>", "give up after this long", positiveSeconds, BOOT_DEFAULTS.timeoutMs / 1000)
    .addOption(new Option("--accel <accel>", "QEMU accelerator (KVM only where it works)").choices(["tcg", "kvm"]).default("tcg"))
    .option("-q, --quiet", "do not echo the console")
    .option("--secure-boot", "UEFI Secure Boot enforcing, with Debian's snakeoil test key enrolled (sign with /usr/share/ovmf/PkKek-1-snakeoil.key, passphrase snakeoil)")
    .option("--secure-boot-keys <dir>", "Secure Boot enforcing with the PK, KEK and db of a `bronze keys generate` directory enrolled instead")
    .action(async (artifact: string, opts: { timeout: number; accel: "tcg" | "kvm"; quiet?: boolean; secureBoot?: boolean; secureBootKeys?: string }) => {
      const target = await resolveBootTarget(artifact);
      const result = await boot(target, {
        ...BOOT_DEFAULTS,
        timeoutMs: opts.timeout * 1000,
        accel: opts.accel,
        secureBoot: Boolean(opts.secureBoot ?? opts.secureBootKeys),
        secureBootKeys: opts.secureBootKeys,
        onLine: opts.quiet ? undefined : (line) => console.log(`| ${line}`),
      });
      const fields = Object.entries(result.ready).map(([k, v]) => `${k}=${v}`).join(" ");
      console.log(`bronze: boot ok in ${(result.readyAfterMs / 1000).toFixed(1)} s: ${fields}`);
    });

  const kernel = program.command("kernel").description("kernel tools");
  kernel
    .command("config")
    .description("print the normalised kernel config of a kernel profile (fragments merged, resolved, verified)")
    .option("-p, --profile <name>", "kernel profile (kernel/config/profiles/<name>.config)", "minimal")
    .addOption(new Option("--arch <arch>", "architecture").choices(ARCH_NAMES).default(DEFAULT_ARCH.name))
    .action(async (opts: { profile: string; arch: string }) => {
      const { loadKernelSource } = await import("../kernel/source.ts");
      const { createContext } = await import("../pipeline/context.ts");
      const source = await loadKernelSource(join(projectRoot, "kernel"));
      const ctx = createContext(projectRoot, await sourceDateEpoch(projectRoot));
      const { resolveKernelConfig } = await import("../kernel/build.ts");
      process.stdout.write(await resolveKernelConfig(source, { arch: opts.arch, profile: opts.profile, extraConfig: [], modules: [] }, ctx));
    });

  registerHardenCommands(program, projectRoot);
  registerSecureBootCommands(program);
  registerKeysCommands(program);
  registerImageCommands(program);
  registerExtensionCommands(program, projectRoot);
  registerOciCommands(program, projectRoot);
  registerReproCommand(program, projectRoot);
  registerCacheCommands(program, projectRoot);

  program
    .command("doctor")
    .description("list the host tools bronze needs that are missing, and the Debian package that provides each")
    .action(async () => {
      const missing = await missingRequirements();
      if (missing.length === 0) {
        console.log(`bronze doctor: all ${HOST_REQUIREMENTS.length} host requirements are present`);
        return;
      }
      console.log(`bronze doctor: ${missing.length} of ${HOST_REQUIREMENTS.length} host requirements missing:`);
      for (const m of missing) console.log(`  ${m.name.padEnd(20)} apt-get install ${m.debianPackage.padEnd(18)} (${m.purpose})`);
      const packages = [...new Set(missing.map((m) => m.debianPackage))].join(" ");
      console.log(`fix: apt-get install ${packages}   (or run 'make', which installs them)`);
      process.exitCode = EXIT_FAILURE;
    });

  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  // what bronze writes (cache entries, trees packed into images, outputs) must not depend on the caller's umask
  process.umask(0o022);
  try {
    await createProgram(argv).parseAsync(argv as string[], { from: "user" });
    return Number(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (error instanceof BronzeError) {
      console.error(`bronze: ${error.message}`);
      return error.exitCode;
    }
    console.error("bronze: unexpected error (a bug):", error);
    return EXIT_FAILURE;
  }
}

