/**
 * The machine architectures bronze builds images for, each with every name it has in the vocabularies
 * bronze speaks. Profiles, kernel specs and cache keys carry the `name`; everything else is looked up
 * here, so that nothing else spells an architecture.
 */
export interface Arch {
  /** profiles, `uname -m`, the kernel config fragment kernel/config/<name>.config */
  name: string;
  /** GNU's target triplet: the toolchain's prefix and its directories (/usr/lib/gcc/<triplet>/) */
  gnuTriplet: string;
  /** Linux's ARCH= (arch/<kernel>/ in its tree) */
  kernel: string;
  /** the boot image `make` leaves in the kernel tree */
  kernelImage: string;
  /** the OCI platform's architecture; the installer's files are under usr/install/<oci>/ */
  oci: string;
  /** kernel-hardening-checker's name for it */
  hardening: string;
  /** the UEFI removable-media boot file, EFI/BOOT/<file> */
  efiBootFile: string;
  /** systemd-stub and systemd-boot of Debian's systemd-boot-efi, for this architecture */
  stub: string;
  bootloader: string;
  /** systemd-boot's own file name on the ESP, EFI/systemd/<name> */
  bootloaderName: string;
  /** QEMU and its UEFI firmware (Debian's ovmf), for boot tests */
  qemu: string;
  /** QEMU's TPM 2.0 device on this machine type, backed by swtpm (bronze boot --tpm) */
  qemuTpmDevice: string;
  firmware: { code: string; vars: string; secureBootCode: string; snakeoilVars: string };
  /** libseccomp's name for it (an OCI runtime config's seccomp architectures) */
  seccomp: string;
  /** syscalls of this architecture alone that a confined process is denied, beside every arch's (DENIED_SYSCALLS) */
  deniedSyscalls: readonly string[];
}

const X86_64: Arch = {
  name: "x86_64",
  gnuTriplet: "x86_64-linux-gnu",
  kernel: "x86",
  kernelImage: "arch/x86/boot/bzImage",
  oci: "amd64",
  hardening: "X86_64",
  efiBootFile: "BOOTX64.EFI",
  stub: "/usr/lib/systemd/boot/efi/linuxx64.efi.stub",
  bootloader: "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
  bootloaderName: "systemd-bootx64.efi",
  qemu: "qemu-system-x86_64",
  qemuTpmDevice: "tpm-tis",
  firmware: {
    code: "/usr/share/OVMF/OVMF_CODE_4M.fd",
    vars: "/usr/share/OVMF/OVMF_VARS_4M.fd",
    // Secure Boot: the SMM firmware build, and variables with Debian's snakeoil test key enrolled (PK, KEK, db)
    secureBootCode: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
    snakeoilVars: "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd",
  },
  seccomp: "SCMP_ARCH_X86_64",
  deniedSyscalls: ["iopl", "ioperm", "uselib", "lookup_dcookie", "nfsservctl", "create_module", "get_kernel_syms", "query_module", "_sysctl"],
};

export const ARCHES: readonly Arch[] = [X86_64];

/** The architecture of what has none named (a boot test's UKI, an installer read without one asked for). */
export const DEFAULT_ARCH: Arch = X86_64;

/** The machine bronze runs on; today always the one it builds for (cross-building comes with a second arch). */
export const HOST_ARCH: Arch = X86_64;

export const ARCH_NAMES: readonly string[] = ARCHES.map((a) => a.name);

/** The architecture of a name profiles use; an unknown one is a bug (profiles are checked when read). */
export function archNamed(name: string): Arch {
  const arch = ARCHES.find((a) => a.name === name);
  if (!arch) throw new Error(`internal: no architecture named ${name}; bronze builds ${ARCH_NAMES.join(", ")}`);
  return arch;
}
