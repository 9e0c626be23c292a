import { realpathSync, statSync } from "node:fs";
import { access, mkdir, readFile } from "node:fs/promises";
import { delimiter, dirname, join } from "node:path";
import { ARCHES, DEFAULT_ARCH } from "./arch.ts";
import { writeFileAtomic } from "./atomic.ts";
import { probe } from "./exec.ts";
import { crossPrefix, HOST_ARCH } from "./arch.ts";

/** A program or file bronze uses from the host, and the Debian package that provides it. */
export interface HostRequirement {
  name: string;
  /** a command looked up on PATH, or an absolute file path */
  check: { command: string } | { file: string };
  debianPackage: string;
  purpose: string;
}


const command = (name: string, debianPackage: string, purpose: string): HostRequirement => ({
  name,
  check: { command: name },
  debianPackage,
  purpose,
});
const file = (name: string, path: string, debianPackage: string, purpose: string): HostRequirement => ({
  name,
  check: { file: path },
  debianPackage,
  purpose,
});

export const HOST_REQUIREMENTS: readonly HostRequirement[] = [
  command("gcc", "build-essential", "compiles packages and the kernel"),
  command("make", "build-essential", "runs package and kernel builds"),
  command("ld", "binutils", "links packages and the kernel"),
  command("bc", "bc", "kernel build"),
  command("flex", "flex", "kernel build"),
  command("bison", "bison", "kernel build"),
  command("openssl", "openssl", "generates the ephemeral module-signing key"),
  file("libelf headers", "/usr/include/libelf.h", "libelf-dev", "kernel build (objtool)"),
  file("openssl headers", "/usr/include/openssl/ssl.h", "libssl-dev", "kernel build (sign-file, extract-cert)"),
  file("GCC plugin headers", `/usr/lib/gcc/${HOST_ARCH.gnuTriplet}/12/plugin/include/plugin-version.h`, "gcc-12-plugin-dev", "kernel build (randstruct, stackleak, latent entropy plugins)"),
  ...ARCHES.filter((a) => a !== HOST_ARCH).flatMap((a) => [
    command(`${crossPrefix(a)}gcc`, `gcc-${a.gnuTriplet}`, `cross-builds packages and the kernel for ${a.name}`),
    file(`GCC plugin headers (${a.name})`, `/usr/lib/gcc-cross/${a.gnuTriplet}/12/plugin/include/plugin-version.h`, `gcc-12-plugin-dev-${a.gnuTriplet}`, `kernel build for ${a.name}`),
    command(a.qemu, a.debianPackages.qemu, `boots ${a.name} images`),
    file(`UEFI firmware (${a.name})`, a.firmware.code, a.debianPackages.firmware, `boots ${a.name} images`),
  ]),
  command("dpkg-deb", "dpkg", "unpacks another architecture's systemd-boot-efi"),
  command("depmod", "kmod", "indexes kernel modules"),
  command("bwrap", "bubblewrap", "runs builds in a sandbox without network"),
  command("apt-get", "apt", "fetches Debian source packages"),
  command("tar", "tar", "unpacks sources"),
  command("xz", "xz-utils", "unpacks the kernel source"),
  command("zstd", "zstd", "compresses the initramfs"),
  command("mksquashfs", "squashfs-tools", "makes rootfs.sqsh"),
  command("gperf", "gperf", "package builds (libseccomp's syscall table)"),
  command("cmake", "cmake", "package builds (build: cmake)"),
  command("ninja", "ninja-build", "package builds (build: cmake, build: meson)"),
  command("meson", "meson", "package builds (build: meson)"),
  command("pkg-config", "pkgconf", "package builds (crun finds yajl)"),
  command("rsync", "rsync", "package builds (linux-headers: the kernel's headers_install)"),
  command("cpio", "cpio", "tests: reads back the initramfs"),
  command("objdump", "binutils", "tests: reads back the UKI"),
  command("git", "git", "SOURCE_DATE_EPOCH from the last commit"),
  ...ARCHES.filter((a) => a.efi.kind === "host").flatMap((a) => [
    file(`systemd-stub (${a.name})`, a.stub, "systemd-boot-efi", "the UKI's EFI stub"),
    file(`systemd-boot (${a.name})`, a.bootloader, "systemd-boot-efi", "the bootloader in the installer image"),
  ]),
  command("skopeo", "skopeo", "tests: reads and copies the installer image"),
  command("umoci", "umoci", "tests: unpacks the installer image"),
  command(DEFAULT_ARCH.qemu, DEFAULT_ARCH.debianPackages.qemu, "boots images"),
  file("OVMF firmware", DEFAULT_ARCH.firmware.code, DEFAULT_ARCH.debianPackages.firmware, "UEFI firmware for boots"),
  file("OVMF variables", DEFAULT_ARCH.firmware.vars, "ovmf", "UEFI variable store template for boots"),
  file("OVMF Secure Boot firmware", DEFAULT_ARCH.firmware.secureBootCode, "ovmf", "boots with Secure Boot enforcing (bronze boot --secure-boot)"),
  file("OVMF snakeoil variables", DEFAULT_ARCH.firmware.snakeoilVars, "ovmf", "Secure Boot boots: Debian's test key enrolled"),
  command("sbverify", "sbsigntool", "tests: checks the UKI's PE structure"),
  command("sign-efi-sig-list", "efitools", "tests: the reference for Secure Boot signature lists and .auth updates"),
  command("mkfs.vfat", "dosfstools", "disk images: formats the ESP (bronze image disk)"),
  command("mcopy", "mtools", "disk images: fills the ESP without mounting it"),
  command("xorriso", "xorriso", "ISO images (bronze image iso)"),
  command("qemu-img", "qemu-utils", "disk formats: qcow2 (bronze image disk --format)"),
  file("iPXE ROM for virtio-net", "/usr/lib/ipxe/qemu/efi-virtio.rom", "ipxe-qemu", "tests: network boot through boot.ipxe (bronze boot --ipxe)"),
  command("swtpm", "swtpm", "measured boots: a TPM 2.0 for QEMU (bronze boot --tpm)"),
  command("swtpm_setup", "swtpm-tools", "tests: a TPM for systemd-measure, the reference for .pcrsig"),
  file("TPM access over swtpm's TCP socket", `/usr/lib/${HOST_ARCH.gnuTriplet}/libtss2-tcti-swtpm.so.0`, "libtss2-tcti-swtpm0", "tests: systemd-measure signs through swtpm"),
  // systemd-measure loads these when it signs; without them it says so only at debug level
  file("TPM 2.0 ESAPI (libtss2-esys)", `/usr/lib/${HOST_ARCH.gnuTriplet}/libtss2-esys.so.0`, "libtss2-esys-3.0.2-0", "tests: systemd-measure's TPM calls"),
  file("TPM 2.0 return codes (libtss2-rc)", `/usr/lib/${HOST_ARCH.gnuTriplet}/libtss2-rc.so.0`, "libtss2-rc0", "tests: systemd-measure's TPM calls"),
  file("systemd-measure", "/usr/lib/systemd/systemd-measure", "systemd", "tests: the reference for PCR 11 predictions and .pcrsig"),
  command("isoinfo", "genisoimage", "tests: reads back ISO images"),
  command("sfdisk", "fdisk", "tests: reads back the GPT of disk images"),
  command("sgdisk", "gdisk", "tests: verifies the GPT of disk images"),
  command("chromium", "chromium", "tests: renders report.html headless and screenshots it"),
];

/** Whether a command is on PATH. */
export async function hasCommand(command: string): Promise<boolean> {
  return (await probe("sh", ["-c", 'command -v "$1"', "sh", command])).exitCode === 0;
}

async function isPresent(requirement: HostRequirement): Promise<boolean> {
  if ("file" in requirement.check) {
    return access(requirement.check.file).then(
      () => true,
      () => false,
    );
  }
  return hasCommand(requirement.check.command);
}

export async function missingRequirements(
  requirements: readonly HostRequirement[] = HOST_REQUIREMENTS,
): Promise<HostRequirement[]> {
  const present = await Promise.all(requirements.map(isPresent));
  return requirements.filter((_, i) => !present[i]);
}

const versionCache = new Map<string, Promise<string>>();

/** A version a tool printed, under the identity of the binary that printed it. */
interface KnownVersion {
  binary: string;
  version: string;
}

let known: { file: string; versions: Promise<Record<string, KnownVersion>> } | undefined;

/**
 * Keeps the versions tools print in `file`, across runs: a build that changed nothing then starts no tool
 * just to ask its version. A version is used again only while its binary is the same file, unchanged.
 */
export function keepToolVersionsIn(file: string): void {
  const versions = readFile(file, "utf8").then(
    (text) => JSON.parse(text) as Record<string, KnownVersion>,
    () => ({}),
  );
  known = { file, versions };
}

/** The binary PATH finds for `tool`, with what changes whenever it is replaced or altered. */
function binaryIdentity(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const info = statSync(join(dir, tool), { bigint: true, throwIfNoEntry: false });
    if (!info?.isFile() || !(info.mode & 0o111n)) continue;
    return `${realpathSync(join(dir, tool))} ${info.dev}:${info.ino} ${info.size} ${info.mtimeNs} ${info.ctimeNs}`;
  }
  return undefined;
}

async function printedVersion(tool: string, args: readonly string[]): Promise<string> {
  return (await probe(tool, args)).all.split("\n")[0]?.trim() ?? "";
}

async function rememberedVersion(id: string, tool: string, args: readonly string[]): Promise<string> {
  const binary = binaryIdentity(tool);
  if (!known || !binary) return printedVersion(tool, args);
  const versions = await known.versions;
  const remembered = versions[id];
  if (remembered?.binary === binary) return remembered.version;
  const version = await printedVersion(tool, args);
  versions[id] = { binary, version };
  await mkdir(dirname(known.file), { recursive: true });
  await writeFileAtomic(known.file, JSON.stringify(versions, null, 2) + "\n").catch(() => undefined);
  return version;
}

/** The first line a tool prints about its version: part of every cache key that uses it. */
export function toolVersion(tool: string, args: readonly string[] = ["--version"]): Promise<string> {
  const id = [tool, ...args].join(" ");
  let version = versionCache.get(id);
  if (!version) {
    version = rememberedVersion(id, tool, args);
    versionCache.set(id, version);
  }
  return version;
}

/** A tool name, or a tool name followed by the arguments that make it print its version. */
export type ToolSpec = string | readonly [string, ...string[]];

export async function toolVersions(tools: readonly ToolSpec[]): Promise<Record<string, string>> {
  const entries = await Promise.all(
    tools.map(async (t) => {
      const [name, ...args] = typeof t === "string" ? [t] : t;
      return [name, await toolVersion(name, args.length ? args : ["--version"])] as const;
    }),
  );
  return Object.fromEntries(entries);
}
