/**
 * The files a build publishes in _out/<profile>/ (and the installer carries), each name spelled once, and
 * the output kinds a profile chooses from: a kind is the files it adds. A new kind is its writer in the
 * pipeline plus one row here.
 */
export const FILES = {
  rootfs: "rootfs.sqsh",
  initramfs: "initramfs.cpio.zst",
  kernel: "vmlinuz",
  uki: "uki.efi",
  signedUki: "uki.signed.efi",
  bootloader: "systemd-boot.efi",
  signedBootloader: "systemd-boot.signed.efi",
  moduleCert: "module-signing.der",
  installerTar: "installer.oci.tar",
  installerLayout: "installer",
  manifest: "manifest.json",
  hardening: "hardening.json",
  report: "report.html",
  disk: "disk.raw",
  diskZst: "disk.raw.zst",
  diskXz: "disk.raw.xz",
  qcow2: "disk.qcow2",
  vhd: "disk.vhd",
  gcp: "disk.raw.tar.gz",
  ova: "disk.ova",
  iso: "image.iso",
  pxe: "pxe",
} as const;

/** Each output kind and the published files that are its; every other file (manifest, SBOMs, rootfs, reports) is always published. */
const OUTPUT_FILES = {
  uki: [FILES.uki, FILES.signedUki],
  "kernel-initramfs": [FILES.kernel, FILES.initramfs],
  installer: [FILES.installerTar, FILES.signedBootloader, `${FILES.installerLayout}/`],
  disk: [FILES.disk],
  "raw.zst": [FILES.diskZst],
  "raw.xz": [FILES.diskXz],
  qcow2: [FILES.qcow2],
  vhd: [FILES.vhd],
  gcp: [FILES.gcp],
  ova: [FILES.ova],
  iso: [FILES.iso],
  pxe: [`${FILES.pxe}/`],
} as const satisfies Record<string, readonly string[]>;

export type Output = keyof typeof OUTPUT_FILES;

/**
 * The formats a disk image is written in (`bronze image disk --format`), each with the output that asks
 * for it: raw is `disk`; the others are made from the raw disk (compressed, or for a hypervisor or cloud).
 */
export const DISK_FORMATS = { raw: "disk", "raw.zst": "raw.zst", "raw.xz": "raw.xz", qcow2: "qcow2", vhd: "vhd", gcp: "gcp", ova: "ova" } as const satisfies Record<string, Output>;
export type DiskFormat = keyof typeof DISK_FORMATS;
export type DiskOutput = (typeof DISK_FORMATS)[DiskFormat];

/** The outputs written from the installer image's boot files, as `bronze image` writes them: they need `installer`. */
export const BOOT_MEDIA = [...Object.values(DISK_FORMATS), "iso", "pxe"] as const satisfies readonly Output[];
export type BootMedium = (typeof BOOT_MEDIA)[number];
export const isBootMedium = (output: Output): output is BootMedium => (BOOT_MEDIA as readonly Output[]).includes(output);

/** The disk format a boot medium output is, if it is a disk image (the ISO is not). */
export function diskFormatOf(medium: BootMedium): DiskFormat | undefined {
  return (Object.keys(DISK_FORMATS) as DiskFormat[]).find((format) => DISK_FORMATS[format] === medium);
}

/** The one file (or directory: pxe) a boot medium output publishes. */
export const mediumFile = (medium: BootMedium): string => OUTPUT_FILES[medium][0].replace(/\/$/, "");
export const OUTPUTS = Object.keys(OUTPUT_FILES) as Output[];
export const DEFAULT_OUTPUTS: readonly Output[] = ["uki", "kernel-initramfs", "installer"];

/** The files (not directories) that these outputs add. */
export const outputFiles = (outputs: readonly Output[]): string[] => outputs.flatMap((kind) => OUTPUT_FILES[kind].filter((file: string) => !file.endsWith("/")));

/** Whether a profile with these outputs publishes a file of this name (a name ending in '/' is a directory). */
export function isPublished(outputs: readonly Output[], name: string): boolean {
  const owner = OUTPUTS.find((kind) => OUTPUT_FILES[kind].some((file: string) => (file.endsWith("/") ? name.startsWith(file) : name === file)));
  return owner === undefined || outputs.includes(owner);
}
