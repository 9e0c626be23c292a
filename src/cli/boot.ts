import { stat } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError, Option, type Command } from "commander";
import { boot, BOOT_DEFAULTS, type BootTarget } from "../boot/qemu.ts";
import { ARCH_NAMES, archNamed, archOfPeMachine, DEFAULT_ARCH, type Arch } from "../core/arch.ts";
import { InputError } from "../core/errors.ts";
import { FILES } from "../core/outputs.ts";
import { wholeNumberOption } from "./number-option.ts";

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("give a number of seconds above 0");
  return n;
}

const memoryMiB = wholeNumberOption(128, Infinity, "give a whole number of MiB, at least 128 (OVMF needs that much)");

async function resolveBootTarget(artifact: string, asDisk: boolean, ipxe: boolean): Promise<BootTarget> {
  const info = await stat(artifact).catch(() => {
    throw new InputError(`${artifact}: no such file or directory; give a UKI (.efi) or a build output directory such as _out/minimal`);
  });
  if (info.isDirectory()) {
    const { PXE_BOOTFILES } = await import("../disk/pxe.ts");
    const isPxe = await stat(join(artifact, PXE_BOOTFILES.ipxe)).then(() => true, () => false);
    if (isPxe) return { kind: "network", root: artifact, ...(ipxe ? { bootfile: PXE_BOOTFILES.ipxe, via: "ipxe" } : { bootfile: PXE_BOOTFILES.uefi, via: "uefi" }) };
  }
  if (ipxe) throw new InputError(`--ipxe: ${artifact} holds no boot.ipxe; give a directory written by bronze image pxe (or _out/<profile>/pxe)`);
  if (info.isFile()) {
    const { isGptDisk, isIsoImage, isQcow2 } = await import("../disk/disk-file.ts");
    // a hybrid ISO is a GPT disk too: booted as what it was made as
    if (!asDisk && (await isIsoImage(artifact))) return { kind: "cdrom", iso: artifact };
    if (await isQcow2(artifact)) return { kind: "disk", disk: artifact, format: "qcow2" };
    if (await isGptDisk(artifact)) return { kind: "disk", disk: artifact };
  }
  if (asDisk) throw new InputError(`--as-disk: ${artifact} is not a GPT disk image; give a raw disk (bronze image disk) or an ISO (bronze image iso)`);
  const uki = info.isDirectory() ? join(artifact, FILES.uki) : artifact;
  await stat(uki).catch(() => {
    throw new InputError(`${artifact}: holds no ${FILES.uki}; run 'bronze build' first`);
  });
  return { kind: "uki", uki };
}

/**
 * The machine to emulate: --arch, else a UKI's own (its PE machine), else the host's (a disk, an ISO or a
 * network boot directory is booted as the host's unless told).
 */
async function bootArch(target: BootTarget, option: string | undefined): Promise<Arch> {
  if (option) return archNamed(option);
  if (target.kind !== "uki") return DEFAULT_ARCH;
  const { parsePe } = await import("../uki/pe.ts");
  const { readFile } = await import("node:fs/promises");
  const machine = parsePe(await readFile(target.uki)).machine;
  const arch = archOfPeMachine(machine);
  if (!arch) throw new InputError(`${target.uki}: an EFI program for PE machine 0x${machine.toString(16)}, which bronze does not boot; it boots ${ARCH_NAMES.join(", ")}`);
  return arch;
}

/** `bronze boot`: a UKI, an output directory, an ISO or a disk in QEMU, until init says it is ready. */
export function registerBootCommand(program: Command): void {
  program
    .command("boot")
    .description("boot a UKI, an ISO or a disk in QEMU (OVMF, serial console) and wait for init's ready line")
    .argument("<artifact>", "a UKI file, a build output directory such as _out/minimal, an ISO (bronze image iso; booted as a CD-ROM), a network boot directory (bronze image pxe; served by TFTP) or a raw or qcow2 disk image (bronze image disk; booted as the machine's disk, so it is written to)")
    .option("--timeout <seconds>", "give up after this long", positiveSeconds, BOOT_DEFAULTS.timeoutMs / 1000)
    .option("--memory <MiB>", "the machine's memory", memoryMiB, BOOT_DEFAULTS.memoryMiB)
    .addOption(new Option("--accel <accel>", "QEMU accelerator (KVM only where it works)").choices(["tcg", "kvm"]).default("tcg"))
    .option("-q, --quiet", "do not echo the console")
    .option("--secure-boot", "UEFI Secure Boot enforcing, with Debian's snakeoil test key enrolled (sign with /usr/share/ovmf/PkKek-1-snakeoil.key, passphrase snakeoil)")
    .option("--secure-boot-keys <dir>", "Secure Boot enforcing with the PK, KEK and db of a `bronze keys generate` directory enrolled instead")
    .option("--secure-boot-setup-mode", "Secure Boot firmware with no keys (setup mode), for an image that enrols its own (bronze image iso --enroll-keys); reboots are allowed")
    .option("--as-disk", "boot an ISO as the machine's disk, as when written to a USB stick (it is written to)")
    .option("--tpm", "a TPM 2.0 (swtpm) that the firmware, systemd-stub and init measure into; the ready line then gives PCR 11")
    .addOption(new Option("--arch <arch>", "the machine to emulate (default: a UKI's own architecture, else the host's)").choices(ARCH_NAMES))
    .option("--ipxe", `network boot of a pxe directory through the NIC's iPXE and boot.ipxe (else the firmware's PXE loads ${FILES.uki})`)
    .action(async (artifact: string, opts: { timeout: number; memory: number; accel: "tcg" | "kvm"; quiet?: boolean; secureBoot?: boolean; secureBootKeys?: string; secureBootSetupMode?: boolean; asDisk?: boolean; ipxe?: boolean; tpm?: boolean; arch?: string }) => {
      const target = await resolveBootTarget(artifact, Boolean(opts.asDisk), Boolean(opts.ipxe));
      const result = await boot(target, {
        ...BOOT_DEFAULTS,
        arch: await bootArch(target, opts.arch),
        timeoutMs: opts.timeout * 1000,
        memoryMiB: opts.memory,
        accel: opts.accel,
        secureBoot: Boolean(opts.secureBoot ?? opts.secureBootKeys ?? opts.secureBootSetupMode),
        secureBootKeys: opts.secureBootKeys,
        secureBootSetupMode: opts.secureBootSetupMode,
        // enrolling keys ends in a reset
        allowReboot: opts.secureBootSetupMode,
        tpm: opts.tpm,
        onLine: opts.quiet ? undefined : (line) => console.log(`| ${line}`),
      });
      const fields = Object.entries(result.ready).map(([k, v]) => `${k}=${v}`).join(" ");
      console.log(`bronze: boot ok in ${(result.readyAfterMs / 1000).toFixed(1)} s: ${fields}`);
    });
}
