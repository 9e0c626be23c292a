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
  iso: "image.iso",
} as const;

/** Each output kind and the published files that are its; every other file (manifest, SBOMs, rootfs, reports) is always published. */
const OUTPUT_FILES = {
  uki: [FILES.uki, FILES.signedUki],
  "kernel-initramfs": [FILES.kernel, FILES.initramfs],
  installer: [FILES.installerTar, FILES.signedBootloader, `${FILES.installerLayout}/`],
  disk: [FILES.disk],
  iso: [FILES.iso],
} as const satisfies Record<string, readonly string[]>;

export type Output = keyof typeof OUTPUT_FILES;

/** The outputs written from the installer image's boot files, as `bronze image` writes them: they need `installer`. */
export const BOOT_MEDIA = ["disk", "iso"] as const satisfies readonly Output[];
export type BootMedium = (typeof BOOT_MEDIA)[number];
export const isBootMedium = (output: Output): output is BootMedium => (BOOT_MEDIA as readonly Output[]).includes(output);
export const OUTPUTS = Object.keys(OUTPUT_FILES) as Output[];
export const DEFAULT_OUTPUTS: readonly Output[] = ["uki", "kernel-initramfs", "installer"];

/** Whether a profile with these outputs publishes a file of this name (a name ending in '/' is a directory). */
export function isPublished(outputs: readonly Output[], name: string): boolean {
  const owner = OUTPUTS.find((kind) => OUTPUT_FILES[kind].some((file: string) => (file.endsWith("/") ? name.startsWith(file) : name === file)));
  return owner === undefined || outputs.includes(owner);
}
