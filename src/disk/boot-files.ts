import { archOfOci, DEFAULT_ARCH, type Arch } from "../core/arch.ts";
import { InputError } from "../core/errors.ts";
import { FILES } from "../core/outputs.ts";
import { parseObject } from "../oci/descriptor.ts";
import { imageArchitectures, layerEntries, openLayout, readImage, type LayoutReader } from "../oci/layout-read.ts";

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

/** An installer image: a layout directory or tar, or one opened already (pulled and verified from a registry). */
export type InstallerSource = string | LayoutReader;

/**
 * The architecture of an installer's boot files to take: `wanted`, else the installer's only one, else
 * (an index of several) the host's; one the installer does not hold is refused, naming both.
 */
async function installerArch(layout: LayoutReader, wanted: Arch | undefined, wantedBy: string): Promise<Arch> {
  const held = await imageArchitectures(layout);
  const only = held.length === 1 ? archOfOci(held[0] ?? "") : undefined;
  const arch = wanted ?? only ?? DEFAULT_ARCH;
  if (held.length && !held.includes(arch.oci)) {
    throw new InputError(`${layout.source}: an installer for ${held.join(", ")}, not ${arch.oci}, which ${wantedBy} is (${arch.name}); give the installer built for ${arch.name} (bronze build --arch ${arch.name}) or an index holding it (bronze image index)`);
  }
  return arch;
}

/**
 * The boot files of an installer image, preferring the Secure Boot signed ones, for `arch` (see
 * installerArch: `wantedBy` says whose architecture it is, for the error).
 */
export async function readInstaller(from: InstallerSource, arch?: Arch, wantedBy = "--arch"): Promise<InstallerContent> {
  const layout = typeof from === "string" ? await openLayout(from) : from;
  const source = layout.source;
  const chosen = await installerArch(layout, arch, wantedBy);
  const architecture = chosen.oci;
  const image = await readImage(layout, { architecture });
  const files = new Map<string, Buffer>();
  for (const entry of await layerEntries(layout, image)) {
    if (entry.type === "file" && entry.path.startsWith(`usr/install/${architecture}/`)) files.set(entry.path.slice(`usr/install/${architecture}/`.length), entry.data ?? Buffer.alloc(0));
  }
  const need = (name: string) => {
    const data = files.get(name);
    if (!data) throw new InputError(`${source}: no usr/install/${architecture}/${name}; give an installer image written by bronze build`);
    return data;
  };
  const manifest = parseObject(`${source}: usr/install/${architecture}/${FILES.manifest}`, need(FILES.manifest));
  const { version, profile, sourceDateEpoch, cmdline } = manifest;
  if (typeof version !== "string" || !version || typeof profile !== "string" || !profile || typeof sourceDateEpoch !== "number" || typeof cmdline !== "string") {
    throw new InputError(`${source}: its ${FILES.manifest} lacks version, profile, sourceDateEpoch or cmdline (strings, and a number for sourceDateEpoch)`);
  }
  const signed = files.has(FILES.signedUki) && files.has(FILES.signedBootloader);
  return {
    arch: chosen,
    version,
    profile,
    epoch: sourceDateEpoch,
    uki: need(signed ? FILES.signedUki : FILES.uki),
    bootloader: need(signed ? FILES.signedBootloader : FILES.bootloader),
    kernel: need(FILES.kernel),
    initramfs: need(FILES.initramfs),
    cmdline,
    signed,
  };
}

/** The UKI's file name on the ESP; systemd-boot lists EFI/Linux/*.efi and boots the newest version. */
export const ukiFileName = (version: string) => `bronze-${version}.efi`;
