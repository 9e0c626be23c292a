import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BronzeError } from "../core/errors.ts";
import { DEFAULT_ARCH, type Arch } from "../core/arch.ts";
import { start, type Started } from "../core/exec.ts";

/** What to boot: a UKI under UEFI firmware, or a kernel and initramfs directly. */
export type BootTarget =
  | { kind: "uki"; uki: string }
  /** a raw GPT disk whose ESP the firmware boots (written to: it is the machine's disk) */
  | { kind: "disk"; disk: string; format?: "raw" | "qcow2" }
  /** an ISO the firmware boots as a CD-ROM (El Torito) */
  | { kind: "cdrom"; iso: string }
  /**
   * network boot from a directory served by QEMU's TFTP (user networking): the firmware's own PXE loads
   * `bootfile` (a UKI), or the NIC's iPXE ROM runs it (an iPXE script)
   */
  | { kind: "network"; root: string; bootfile: string; via: "uefi" | "ipxe" }
  | { kind: "kernel"; kernel: string; initramfs: string; cmdline: string };

export interface BootOptions {
  /** the machine QEMU emulates and its UEFI firmware: the image's architecture (default: the host's) */
  arch?: Arch;
  timeoutMs: number;
  accel: "tcg" | "kvm";
  memoryMiB: number;
  /** called with every console line as it arrives */
  onLine?: (line: string) => void;
  /** wait for the machine to power itself off after the ready line */
  expectPowerOff?: boolean;
  /** keep reading after the ready line until each of these has matched a console line (or the timeout) */
  until?: readonly RegExp[];
  /** UEFI Secure Boot enforcing, with Debian's snakeoil test key enrolled (UKI boots only) */
  secureBoot?: boolean;
  /**
   * let the machine reboot (A/B tests: a UKI that panics is tried again, then abandoned); a
   * kernel panic then does not end the boot, only the ready line or the timeout does
   */
  allowReboot?: boolean;
  /** with secureBoot: enrol this `bronze keys generate` directory (PK, KEK, db) in an empty store instead */
  secureBootKeys?: string;
  /** with secureBoot: no keys at all (setup mode), for an image that enrols its own */
  secureBootSetupMode?: boolean;
  /** a TPM 2.0 (swtpm, fresh state each boot) that the firmware, systemd-stub and init measure into */
  tpm?: boolean;
}

export interface BootResult {
  ready: Record<string, string>;
  readyAfterMs: number;
  console: string[];
  poweredOff: boolean;
  /** how many times a kernel started (more than 1 after reboots) */
  kernelStarts: number;
}

/** init's line when the system is up (pkgs/init/src/service-format.h READY_LINE), then its fields */
export const READY_LINE = "bronze: ready";
const READY = new RegExp(`${READY_LINE} ?(.*)$`);
const FAILURE = /Kernel panic|bronze: fatal|Access Denied|Boot failed|Security Violation/;
const PANIC = /Kernel panic/;
const KERNEL_BANNER = /Linux version \d/;
const TAIL = 30;

/**
 * 256 MiB holds every bronze image with room to spare; more costs boot time, since the hardened kernel
 * clears all of its memory at boot (init_on_free): under TCG 512 MiB took 1.3 s longer to the ready line.
 */
export const BOOT_DEFAULTS: BootOptions = { timeoutMs: 180_000, accel: "tcg", memoryMiB: 256 };

function qemuArgs(target: BootTarget, options: BootOptions, scratch: string): string[] {
  const arch = options.arch ?? DEFAULT_ARCH;
  const { firmware, qemuMachine: machine } = arch;
  const common = [
    "-machine", options.secureBoot ? machine.secureBoot : machine.plain,
    ...(machine.cpu ? ["-cpu", machine.cpu] : []),
    "-accel", options.accel,
    "-m", String(options.memoryMiB),
    "-smp", "1",
    "-nodefaults", "-no-user-config", ...(options.allowReboot ? [] : ["-no-reboot"]),
    "-display", "none",
    "-serial", "stdio",
    "-monitor", "none",
    // an entropy source, as every cloud VM has (RDRAND, virtio-rng) and QEMU's default CPU lacks: the firmware's
    // RNG protocol seeds the kernel's KASLR and its random pool, so a first boot's mkfs waits for no entropy
    "-device", "virtio-rng-pci",
  ];
  if (target.kind === "kernel") {
    return [...common, "-kernel", target.kernel, "-initrd", target.initramfs, "-append", target.cmdline];
  }
  return [
    ...common,
    ...(options.secureBoot ? machine.secureBootArgs : []),
    "-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${options.secureBoot ? firmware.secureBootCode : firmware.code}`,
    "-drive", `if=pflash,format=raw,unit=1,file=${join(scratch, "vars.fd")}`,
    ...(target.kind === "network" ? networkBoot(target) : ["-drive", bootDrive(target, scratch)]),
    ...(options.tpm ? tpmDevice(scratch, arch) : []),
  ];
}

const tpmSocket = (scratch: string): string => join(scratch, "swtpm.sock");

/** QEMU's TPM TIS device, backed by the swtpm listening on the scratch directory's socket. */
function tpmDevice(scratch: string, arch: Arch): string[] {
  return ["-chardev", `socket,id=tpm,path=${tpmSocket(scratch)}`, "-tpmdev", "emulator,id=tpm,chardev=tpm", "-device", `${arch.qemuTpmDevice},tpmdev=tpm`];
}

const TPM_START_MS = 30_000;

/** A TPM 2.0 emulator with empty state; it ends when QEMU hangs up. */
async function startTpm(scratch: string): Promise<Started> {
  const state = join(scratch, "tpm");
  await mkdir(state);
  const output: string[] = [];
  const swtpm = await start("swtpm", ["socket", "--tpm2", "--tpmstate", `dir=${state}`, "--ctrl", `type=unixio,path=${tpmSocket(scratch)}`, "--terminate"], (chunk) => output.push(chunk));
  let gone = false;
  void swtpm.ended.then(() => (gone = true));
  // seconds on a machine whose disks and cores other work keeps busy; a fault ends swtpm at once
  const deadline = Date.now() + TPM_START_MS;
  while (!(await exists(tpmSocket(scratch)))) {
    if (gone || Date.now() > deadline) throw new BronzeError(`swtpm did not start: ${output.join("").trim() || `no socket within ${TPM_START_MS / 1000} s`}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return swtpm;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** A NIC on QEMU's user network, whose TFTP server serves the boot directory; no drive at all. */
function networkBoot(target: Extract<BootTarget, { kind: "network" }>): string[] {
  // without an option ROM the NIC is driven by OVMF's VirtioNetDxe, whose PXE boots the UKI itself
  const rom = target.via === "uefi" ? ",romfile=" : "";
  return ["-netdev", `user,id=net0,tftp=${target.root},bootfile=${target.bootfile}`, "-device", `virtio-net-pci,netdev=net0${rom}`];
}

/** The drive the firmware boots from: the disk, the CD-ROM, or a FAT directory holding the UKI. */
function bootDrive(target: Exclude<BootTarget, { kind: "kernel" | "network" }>, scratch: string): string {
  if (target.kind === "disk") return `format=${target.format ?? "raw"},file=${target.disk},if=virtio`;
  if (target.kind === "cdrom") return `format=raw,file=${target.iso},if=ide,media=cdrom,readonly=on`;
  return `format=raw,file=fat:${join(scratch, "esp")},if=virtio,readonly=on`;
}

function parseFields(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .trim()
      .split(/\s+/)
      .filter((w) => w.includes("="))
      .map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1)]),
  );
}

/** What QEMU reads from the scratch directory: the UKI on an ESP directory, and a copy of the UEFI variables. */
async function prepareScratch(target: BootTarget, options: BootOptions, scratch: string): Promise<void> {
  const { firmware, efiBootFile } = options.arch ?? DEFAULT_ARCH;
  if (target.kind === "uki") {
    await mkdir(join(scratch, "esp", "EFI", "BOOT"), { recursive: true });
    await copyFile(target.uki, join(scratch, "esp", "EFI", "BOOT", efiBootFile));
  }
  if (target.kind === "kernel") return;
  if (options.secureBoot && options.secureBootKeys) {
    const { enrollmentVariables } = await import("../secureboot/keys.ts");
    const { setVariables, withoutVariables } = await import("../secureboot/ovmf-store.ts");
    // the snakeoil store emptied: formatted on every arch, unlike the blank AAVMF_VARS.fd
    const empty = withoutVariables(await readFile(firmware.snakeoilVars));
    await writeFile(join(scratch, "vars.fd"), setVariables(empty, await enrollmentVariables(options.secureBootKeys)));
  } else {
    await copyFile(options.secureBoot && !options.secureBootSetupMode ? firmware.snakeoilVars : firmware.vars, join(scratch, "vars.fd"));
  }
}

/** The serial console as a boot reads it: its lines, the ready line's fields, and the boot's verdict once known. */
interface ConsoleWatch {
  lines: string[];
  ready?: Record<string, string>;
  readyAfterMs: number;
  failure?: string;
  /** settles when the boot is decided: ready (and every awaited line seen), a failure line, or the timeout */
  decided: Promise<void>;
  read(chunk: string): void;
  /** the machine is gone: nothing more will be read */
  ended(): void;
}

function watchConsole(options: BootOptions, started: number): ConsoleWatch {
  const awaited = [...(options.until ?? [])];
  let decide: () => void = () => undefined;
  const watch: ConsoleWatch = { lines: [], readyAfterMs: 0, decided: new Promise((resolve) => (decide = resolve)), read, ended: () => settle() };
  const timer = setTimeout(() => {
    const seconds = Math.round(options.timeoutMs / 1000);
    settle(watch.ready ? `no console line matched ${awaited.map(String).join(", ")} within ${seconds} s` : `no ready line within ${seconds} s`);
  }, options.timeoutMs);
  function settle(failure?: string): void {
    if (failure && !watch.failure) watch.failure = failure;
    clearTimeout(timer);
    decide();
  }
  let pending = "";
  function read(chunk: string): void {
    pending += chunk.replace(/\r/g, "");
    const parts = pending.split("\n");
    pending = parts.pop() ?? "";
    for (const line of parts) {
      watch.lines.push(line);
      options.onLine?.(line);
      const matched = awaited.findIndex((pattern) => pattern.test(line));
      if (matched >= 0) awaited.splice(matched, 1);
      const match = READY.exec(line);
      if (match && !watch.ready) {
        watch.ready = parseFields(match[1] ?? "");
        watch.readyAfterMs = Date.now() - started;
      }
      if (watch.ready && awaited.length === 0 && !options.expectPowerOff) settle();
      else if (!match && FAILURE.test(line) && !watch.failure && !(options.allowReboot && PANIC.test(line))) settle(`console reported: ${line.trim()}`);
    }
  }
  return watch;
}

/**
 * Boots in QEMU, reading the serial console; succeeds when init prints its
 * ready line, fails with the last console lines on panic, fatal error or timeout.
 */
export async function boot(target: BootTarget, options: BootOptions = BOOT_DEFAULTS): Promise<BootResult> {
  const scratch = await mkdtemp(join(tmpdir(), "bronze-boot-"));
  let tpm: Started | undefined;
  try {
    await prepareScratch(target, options, scratch);
    if (options.tpm) tpm = await startTpm(scratch);
    const watch = watchConsole(options, Date.now());
    const qemu = await start((options.arch ?? DEFAULT_ARCH).qemu, qemuArgs(target, options, scratch), watch.read);
    let exited = false;
    void qemu.ended.then(() => {
      exited = true;
      watch.ended();
    });
    await watch.decided;
    const exitedByItself = exited;
    if (!exitedByItself) qemu.kill("SIGKILL");
    const result = await qemu.ended;
    const poweredOff = exitedByItself && result.exitCode === 0;
    const { ready, lines } = watch;
    let failure = watch.failure;
    if (!ready && !failure) failure = `QEMU exited (${result.exitCode ?? result.signal}) before the ready line`;
    if (ready && options.expectPowerOff && !poweredOff && !failure) failure = "the machine did not power off after the ready line";
    if (failure || !ready) {
      throw new BronzeError(`boot failed: ${failure}\n--- last console lines ---\n${lines.slice(-TAIL).join("\n")}`);
    }
    return { ready, readyAfterMs: watch.readyAfterMs, console: lines, poweredOff, kernelStarts: lines.filter((l) => KERNEL_BANNER.test(l)).length };
  } finally {
    // it ends with QEMU's connection, but not when QEMU never made one
    tpm?.kill("SIGTERM");
    await tpm?.ended;
    await rm(scratch, { recursive: true, force: true });
  }
}
