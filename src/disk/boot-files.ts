import { DEFAULT_ARCH, type Arch } from "../core/arch.ts";
import { InputError } from "../core/errors.ts";
import { FILES } from "../core/outputs.ts";
import { openLayout, readImage } from "../oci/layout-read.ts";
import { readTar } from "../oci/tar-read.ts";

// What every boot medium (raw disk, ISO) is made of: the boot files an installer image carries.

export interface InstallerContent {
  /** the architecture its boot files are for: it names them on the ESP */
  arch: Arch;
  version: string;
  profile: string;
  epoch: number;
  uki: Buffer;
  bootloader: Buffer;
  /** the kernel, initramfs and command line the UKI holds, for network boot without it */
  kernel: Buffer;
  initramfs: Buffer;
  cmdline: string;
  /** whether the Secure Boot signed UKI and systemd-boot were taken */
  signed: boolean;
}

/** The boot files of an installer image (layout directory or tar), preferring the Secure Boot signed ones. */
export async function readInstaller(source: string, arch: Arch = DEFAULT_ARCH): Promise<InstallerContent> {
  const architecture = arch.oci;
  const image = await readImage(await openLayout(source), { architecture });
  const files = new Map<string, Buffer>();
  for (const layer of image.layers) {
    for (const entry of await readTar(layer)) {
      if (entry.type === "file" && entry.path.startsWith(`usr/install/${architecture}/`)) files.set(entry.path.slice(`usr/install/${architecture}/`.length), entry.data ?? Buffer.alloc(0));
    }
  }
  const need = (name: string) => {
    const data = files.get(name);
    if (!data) throw new InputError(`${source}: no usr/install/${architecture}/${name}; give an installer image written by bronze build`);
    return data;
  };
  const manifest = JSON.parse(need(FILES.manifest).toString()) as { version?: string; profile?: string; sourceDateEpoch?: number; cmdline?: string };
  if (!manifest.version || !manifest.profile || manifest.sourceDateEpoch === undefined || manifest.cmdline === undefined) {
    throw new InputError(`${source}: its manifest.json lacks version, profile, sourceDateEpoch or cmdline`);
  }
  const signed = files.has(FILES.signedUki) && files.has(FILES.signedBootloader);
  return {
    arch,
    version: manifest.version,
    profile: manifest.profile,
    epoch: manifest.sourceDateEpoch,
    uki: need(signed ? FILES.signedUki : FILES.uki),
    bootloader: need(signed ? FILES.signedBootloader : FILES.bootloader),
    kernel: need(FILES.kernel),
    initramfs: need(FILES.initramfs),
    cmdline: manifest.cmdline,
    signed,
  };
}

/** The UKI's file name on the ESP; systemd-boot lists EFI/Linux/*.efi and boots the newest version. */
export const ukiFileName = (version: string) => `bronze-${version}.efi`;
