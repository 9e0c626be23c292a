/**
 * The machine architectures bronze builds images for, each with every name it has in the vocabularies
 * bronze speaks. Profiles, kernel specs and cache keys carry the `name`; everything else is looked up
 * here, so that nothing else spells an architecture.
 */
/**
 * Where an architecture's systemd-stub and systemd-boot come from: the host's systemd-boot-efi (set-up
 * installs it), or Debian's package of that architecture, fetched and checked against its pin (its files
 * are unpacked, never installed: the host keeps one architecture).
 */
export type EfiBinaries = { kind: "host" } | { kind: "debian-binary"; package: string; version: string; architecture: string; sha256: string };

export interface Arch {
  /** profiles, `uname -m`, the kernel config fragment kernel/config/<name>.config */
  name: string;
  /** GNU's target triplet: the toolchain's prefix and its directories (/usr/lib/gcc/<triplet>/) */
  gnuTriplet: string;
  /** Linux's ARCH= (arch/<kernel>/ in its tree) */
  kernel: string;
  /** the make target of the boot image, and where `make` leaves it in the kernel tree */
  kernelTarget: string;
  kernelImage: string;
  /** the OCI platform's architecture; the installer's files are under usr/install/<oci>/ */
  oci: string;
  /** kernel-hardening-checker's name for it */
  hardening: string;
  /** the PE/COFF machine of its EFI programs (the UKI, its stub, systemd-boot) */
  peMachine: number;
  /** the UEFI removable-media boot file, EFI/BOOT/<file> */
  efiBootFile: string;
  /** systemd-stub and systemd-boot of Debian's systemd-boot-efi, for this architecture: paths in the package */
  efi: EfiBinaries;
  stub: string;
  bootloader: string;
  /** systemd-boot's own file name on the ESP, EFI/systemd/<name> */
  bootloaderName: string;
  /** the serial console's device, as the kernel names it (console=NAME) */
  serialConsole: string;
  /** kernel arguments of this architecture alone: its CPU hardening, as kernel-hardening-checker asks */
  kernelArgs: readonly string[];
  /** QEMU and its UEFI firmware (Debian's ovmf, qemu-efi-aarch64), for boot tests */
  qemu: string;
  /** its machine (with Secure Boot: one whose variables the OS cannot write) and CPU */
  qemuMachine: { plain: string; secureBoot: string; cpu?: string; secureBootArgs: readonly string[] };
  /** QEMU's TPM 2.0 device on this machine type, backed by swtpm (bronze boot --tpm) */
  qemuTpmDevice: string;
  firmware: { code: string; vars: string; secureBootCode: string; snakeoilVars: string };
  /** the Debian packages of QEMU and the firmware (set-up installs them) */
  debianPackages: { qemu: string; firmware: string };
  /** libseccomp's name for it (an OCI runtime config's seccomp architectures) */
  seccomp: string;
  /** syscalls of this architecture alone that a confined process is denied, beside every arch's (DENIED_SYSCALLS) */
  deniedSyscalls: readonly string[];
}

const X86_64: Arch = {
  name: "x86_64",
  gnuTriplet: "x86_64-linux-gnu",
  kernel: "x86",
  kernelTarget: "bzImage",
  kernelImage: "arch/x86/boot/bzImage",
  oci: "amd64",
  hardening: "X86_64",
  peMachine: 0x8664,
  efiBootFile: "BOOTX64.EFI",
  efi: { kind: "host" },
  stub: "/usr/lib/systemd/boot/efi/linuxx64.efi.stub",
  bootloader: "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
  bootloaderName: "systemd-bootx64.efi",
  serialConsole: "ttyS0",
  kernelArgs: ["pti=on"],
  qemu: "qemu-system-x86_64",
  // Secure Boot firmware keeps its variables behind SMM: only then can they not be changed from the OS
  qemuMachine: { plain: "q35", secureBoot: "q35,smm=on", secureBootArgs: ["-global", "driver=cfi.pflash01,property=secure,value=on"] },
  qemuTpmDevice: "tpm-tis",
  firmware: {
    code: "/usr/share/OVMF/OVMF_CODE_4M.fd",
    vars: "/usr/share/OVMF/OVMF_VARS_4M.fd",
    // Secure Boot: the SMM firmware build, and variables with Debian's snakeoil test key enrolled (PK, KEK, db)
    secureBootCode: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
    snakeoilVars: "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd",
  },
  debianPackages: { qemu: "qemu-system-x86", firmware: "ovmf" },
  seccomp: "SCMP_ARCH_X86_64",
  deniedSyscalls: ["iopl", "ioperm", "uselib", "lookup_dcookie", "nfsservctl", "create_module", "get_kernel_syms", "query_module", "_sysctl"],
};

const AARCH64: Arch = {
  name: "aarch64",
  gnuTriplet: "aarch64-linux-gnu",
  kernel: "arm64",
  // the EFI stub's PE image, uncompressed: systemd-stub 252 starts it in place (it knows no zboot)
  kernelTarget: "Image",
  kernelImage: "arch/arm64/boot/Image",
  oci: "arm64",
  hardening: "ARM64",
  peMachine: 0xaa64,
  efiBootFile: "BOOTAA64.EFI",
  // the same version as the host's amd64 systemd-boot-efi (a test holds the two together)
  efi: { kind: "debian-binary", package: "systemd-boot-efi", version: "252.39-1~deb12u2", architecture: "arm64", sha256: "d75fbbfa90d37d409e7e65f1149afd770bc17daa3f15f49ef651f608fe7e1dbc" },
  stub: "/usr/lib/systemd/boot/efi/linuxaa64.efi.stub",
  bootloader: "/usr/lib/systemd/boot/efi/systemd-bootaa64.efi",
  bootloaderName: "systemd-bootaa64.efi",
  serialConsole: "ttyAMA0",
  // the kernel unmapped from user space, and speculative store bypass mitigated in the kernel
  kernelArgs: ["kpti=on", "ssbd=kernel"],
  qemu: "qemu-system-aarch64",
  // AAVMF's Secure Boot build is its only one; cortex-a72 is emulated faster than `max` (no pointer authentication)
  qemuMachine: { plain: "virt", secureBoot: "virt", cpu: "cortex-a72", secureBootArgs: [] },
  qemuTpmDevice: "tpm-tis-device",
  firmware: {
    code: "/usr/share/AAVMF/AAVMF_CODE.fd",
    vars: "/usr/share/AAVMF/AAVMF_VARS.fd",
    secureBootCode: "/usr/share/AAVMF/AAVMF_CODE.snakeoil.fd",
    snakeoilVars: "/usr/share/AAVMF/AAVMF_VARS.snakeoil.fd",
  },
  debianPackages: { qemu: "qemu-system-arm", firmware: "qemu-efi-aarch64" },
  seccomp: "SCMP_ARCH_AARCH64",
  // arm64 never had the legacy calls x86_64 keeps
  deniedSyscalls: [],
};

export const ARCHES: readonly Arch[] = [X86_64, AARCH64];

/** The architecture of what has none named (a boot test's UKI, an installer read without one asked for). */
export const DEFAULT_ARCH: Arch = X86_64;

/** The machine bronze runs on; every other architecture is cross-built with Debian's GNU toolchain for it. */
export const HOST_ARCH: Arch = X86_64;

/** The prefix of the toolchain that builds for `arch` (CROSS_COMPILE): none on the host's own. */
export const crossPrefix = (arch: Arch): string => (arch === HOST_ARCH ? "" : `${arch.gnuTriplet}-`);

/** The cross toolchain's compiler and linker for `arch`, whose versions key what it builds: none on the host's own. */
export function crossTools(arch: Arch): string[] {
  const cross = crossPrefix(arch);
  return cross ? [`${cross}gcc`, `${cross}ld`] : [];
}

export const ARCH_NAMES: readonly string[] = ARCHES.map((a) => a.name);

/** The architecture of an OCI platform's name (amd64, arm64), if bronze builds for it. */
export const archOfOci = (oci: string): Arch | undefined => ARCHES.find((a) => a.oci === oci);

/** The architecture whose EFI programs have this PE machine, if bronze builds for it. */
export const archOfPeMachine = (machine: number): Arch | undefined => ARCHES.find((a) => a.peMachine === machine);

/** The architecture of a name profiles use; an unknown one is a bug (profiles are checked when read). */
export function archNamed(name: string): Arch {
  const arch = ARCHES.find((a) => a.name === name);
  if (!arch) throw new Error(`internal: no architecture named ${name}; bronze builds ${ARCH_NAMES.join(", ")}`);
  return arch;
}
