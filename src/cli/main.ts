import { stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { boot, BOOT_DEFAULTS, type BootTarget } from "../boot/qemu.ts";
import { sourceDateEpoch } from "../core/epoch.ts";
import { ARCH_NAMES, DEFAULT_ARCH } from "../core/arch.ts";
import { packageVersion } from "../core/version.ts";
import { BronzeError, EXIT_FAILURE, EXIT_USAGE, InputError } from "../core/errors.ts";
import { HOST_REQUIREMENTS, missingRequirements } from "../core/tools.ts";
import { registerExtensionCommands } from "./extension.ts";
import { registerHardenCommands } from "./harden.ts";
import { registerKeysCommands, registerSecureBootCommands } from "./secureboot.ts";
import { registerOciCommands } from "./oci.ts";
import { registerImageCommands } from "./image.ts";
import { registerReproCommand } from "./repro.ts";
import { registerBuildCommand } from "./build.ts";
import { registerCacheCommands } from "./cache.ts";
import { registerProfileCommands } from "./profile.ts";
import { FILES } from "../core/outputs.ts";

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");


function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("give a number of seconds above 0");
  return n;
}


async function resolveBootTarget(artifact: string): Promise<BootTarget> {
  const info = await stat(artifact).catch(() => {
    throw new InputError(`${artifact}: no such file or directory; give a UKI (.efi) or a build output directory such as _out/minimal`);
  });
  if (info.isFile() && (await (await import("../disk/disk-file.ts")).isGptDisk(artifact))) return { kind: "disk", disk: artifact };
  const uki = info.isDirectory() ? join(artifact, FILES.uki) : artifact;
  await stat(uki).catch(() => {
    throw new InputError(`${artifact}: holds no ${FILES.uki}; run 'bronze build' first`);
  });
  return { kind: "uki", uki };
}


/** `commandLine`: the arguments as given, which a build's stamp is filed under (build/stamp.ts). */
export function createProgram(commandLine: readonly string[] = []): Command {
  const program = new Command()
    .name("bronze")
    .description("Builds minimal, immutable Linux OS images: musl userland, read-only SquashFS root, signed kernel modules, UKI.")
    .version(packageVersion(projectRoot))
    .showHelpAfterError()
    .exitOverride();

  registerBuildCommand(program, projectRoot, commandLine);

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
  registerProfileCommands(program, projectRoot);

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

