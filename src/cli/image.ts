import { stat } from "node:fs/promises";
import { Option, type Command } from "commander";
import { DISK_FORMATS, FILES, type DiskFormat } from "../core/outputs.ts";
import { ARCH_NAMES, archNamed, type Arch } from "../core/arch.ts";
import { DEFAULT_DISK_SIZE } from "../disk/sizes.ts";
import { sizeOption } from "./size-option.ts";
import { installerOptions, openInstaller, type InstallerOptions } from "./installer-source.ts";

const say = (line: string) => console.error(`bronze: ${line}`);
const archOption = (name: string | undefined): Arch | undefined => (name ? archNamed(name) : undefined);

// implementations are imported when a command runs: the CLI starts fast
/** `bronze image disk` and `bronze image iso`: bootable media from an installer. */
export function registerImageCommands(program: Command): void {
  const image = program.command("image").description("images made from an installer image");
  installerOptions(
    image
      .command("disk")
      .description("write a bootable raw GPT disk: an ESP with systemd-boot and the UKI (the Secure Boot signed ones when the installer has them), and a /var partition")
      .requiredOption("--from <installer>", "installer image: an OCI layout directory or tar (e.g. _out/default/installer), or HOST/REPO:TAG in a registry (with --key or --allow-unsigned)")
      .requiredOption("--out <file>", "the disk image to write")
      .option("--size <size>", "disk size (e.g. 2G); the /var partition takes what the ESP leaves", sizeOption, DEFAULT_DISK_SIZE)
      .addOption(new Option("--arch <arch>", "the architecture to take from the installer (default: its only one, or the host's from an index of several)").choices(ARCH_NAMES))
      .addOption(
        new Option("--format <format>", "raw; raw.zst or raw.xz (compressed); qcow2 (QEMU, OpenStack); vhd (Azure: fixed, whole MiB); gcp (disk.raw in a GNU tar, gzipped); ova (VMware: OVF descriptor and stream-optimized VMDK)")
          .choices(Object.keys(DISK_FORMATS))
          .default("raw"),
      ),
  ).action(async (opts: InstallerOptions & { from: string; out: string; size: number; format: DiskFormat; arch?: string }) => {
    const { buildDisk } = await import("../disk/media.ts");
    const { ukiFileName } = await import("../disk/boot-files.ts");
    const from = await openInstaller("--from", opts.from, opts, say);
    const disk = await buildDisk({ from, out: opts.out, sizeBytes: opts.size, format: opts.format, arch: archOption(opts.arch) });
    const written = (await stat(disk.out)).size;
    console.log(`disk ${disk.out}: ${disk.format}, ${written} bytes (a disk of ${disk.sizeBytes}), GPT ${disk.diskGuid}, ${disk.content.profile} ${disk.content.version}${disk.content.signed ? " (Secure Boot signed)" : ""}`);
    for (const p of disk.partitions) console.log(`  ${p.label.padEnd(4)} ${p.guid} at ${p.offset}, ${p.size} bytes`);
    console.log(`  ESP: EFI/BOOT/${disk.content.arch.efiBootFile} (systemd-boot), EFI/Linux/${ukiFileName(disk.content.version)}`);
  });

  installerOptions(
    image
      .command("iso")
      .description("write a UEFI-bootable hybrid ISO: its El Torito boot image is an ESP with systemd-boot and the UKI (the Secure Boot signed ones when the installer has them), also GPT partition 2, so it boots from a CD-ROM and from a USB stick")
      .requiredOption("--from <installer>", "installer image: an OCI layout directory or tar (e.g. _out/default/installer), or HOST/REPO:TAG in a registry (with --key or --allow-unsigned)")
      .requiredOption("--out <file>", "the ISO to write")
      .option("--enroll-keys <dir>", "a `bronze keys generate` directory: its PK, KEK and db updates go into loader/keys/auto/, for systemd-boot to enrol on a machine in setup mode (the installer must be signed with its db key)")
      .addOption(new Option("--arch <arch>", "the architecture to take from the installer (default: its only one, or the host's from an index of several)").choices(ARCH_NAMES)),
  ).action(async (opts: InstallerOptions & { from: string; out: string; enrollKeys?: string; arch?: string }) => {
    const { buildIso } = await import("../disk/iso.ts");
    const iso = await buildIso({ from: await openInstaller("--from", opts.from, opts, say), out: opts.out, enrollKeys: opts.enrollKeys, arch: archOption(opts.arch) });
    const { size } = await stat(iso.out);
    console.log(`iso ${iso.out}: ${size} bytes, volume ${iso.volumeId}, ${iso.content.profile} ${iso.content.version}${iso.content.signed ? " (Secure Boot signed)" : ""}; ESP ${iso.espBytes} bytes (El Torito EFI image and GPT partition 2)${opts.enrollKeys ? "; enrols PK, KEK and db in setup mode" : ""}`);
  });

  installerOptions(
    image
      .command("pxe")
      .description(`write a network boot directory to serve over TFTP or HTTP: ${FILES.uki} for UEFI firmware (signed when the installer is), and ${FILES.kernel}, ${FILES.initramfs}, cmdline and boot.ipxe for iPXE`)
      .requiredOption("--from <installer>", "installer image: an OCI layout directory or tar (e.g. _out/default/installer), or HOST/REPO:TAG in a registry (with --key or --allow-unsigned)")
      .requiredOption("--out <dir>", "the directory to write (replaced whole)")
      .addOption(new Option("--arch <arch>", "the architecture to take from the installer (default: its only one, or the host's from an index of several)").choices(ARCH_NAMES)),
  ).action(async (opts: InstallerOptions & { from: string; out: string; arch?: string }) => {
    const { buildPxe, PXE_BOOTFILES } = await import("../disk/pxe.ts");
    const content = await buildPxe({ from: await openInstaller("--from", opts.from, opts, say), out: opts.out, arch: archOption(opts.arch) });
    console.log(`pxe ${opts.out}: ${content.profile} ${content.version}${content.signed ? " (Secure Boot signed UKI)" : ""}; bootfile ${PXE_BOOTFILES.uefi} (UEFI) or ${PXE_BOOTFILES.ipxe} (iPXE)`);
  });

  registerIndexCommand(image);

  installerOptions(
    program
      .command("upgrade")
      .description("A/B upgrade of a disk made by `bronze image disk`: the installer's UKI becomes the default with boot counting; the current one stays as fallback")
      .requiredOption("--disk <file>", "the raw disk image")
      .requiredOption("--image <installer>", "the new installer image: an OCI layout directory or tar, or HOST/REPO:TAG in a registry (with --key or --allow-unsigned)")
      .option("--tries <n>", "boots the new version gets to reach ready before the previous one comes back", (v) => Number(v), 3),
  ).action(async (opts: InstallerOptions & { disk: string; image: string; tries: number }) => {
    const { upgradeDisk } = await import("../disk/upgrade.ts");
    const from = await openInstaller("--image", opts.image, opts, say);
    const result = await upgradeDisk({ disk: opts.disk, from, tries: opts.tries });
    console.log(`upgrade ${opts.disk}: ${result.version} installed as EFI/Linux/${result.written}${result.signed ? " (Secure Boot signed)" : ""}; fallback ${result.fallback}${result.removed.length ? `; removed ${result.removed.join(", ")}` : ""}`);
    console.log(`the next boot tries ${result.version} up to ${opts.tries} times; init makes it permanent once it is ready`);
  });
}

/** `bronze image index`: one installer index over the installers of one release for several architectures. */
function registerIndexCommand(image: Command): void {
  image
    .command("index")
    .description("one installer index over the installers of a release built for several architectures (bronze build --arch): every image kept byte for byte, tagged with the version; push it with bronze push")
    .argument("<installers...>", "installer layouts (directories or tars), one per architecture, as bronze build and bronze build --arch wrote them (_out/NAME/installer, _out/NAME-ARCH/installer)")
    .requiredOption("--out <path>", "the layout to write: a directory, or a tar when it ends in .tar")
    .action(async (installers: string[], opts: { out: string }) => {
      const { openLayout } = await import("../oci/layout-read.ts");
      const { installerIndex } = await import("../oci/installer-index.ts");
      const { writeLayoutDir } = await import("../oci/layout.ts");
      const { writeFileAtomic } = await import("../core/atomic.ts");
      const index = await installerIndex(await Promise.all(installers.map(openLayout)));
      if (opts.out.endsWith(".tar")) await writeFileAtomic(opts.out, index.tar);
      else await writeLayoutDir(opts.out, index.files);
      console.log(`index ${opts.out}: ${index.index.descriptor.digest}, ${index.architectures.join(" and ")}`);
    });
}
