import type { Arch } from "../core/arch.ts";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeAtomic } from "../core/atomic.ts";
import { FILES } from "../core/outputs.ts";
import { readInstaller, type InstallerContent, type InstallerSource } from "./boot-files.ts";

/**
 * Network boot: a directory to serve over TFTP or HTTP. UEFI firmware boots `uki.efi` itself (the signed
 * one from a signed installer: Secure Boot holds); iPXE runs `boot.ipxe`, which loads the kernel and the
 * initramfs from beside it. Pure: the same installer, the same files.
 */

export interface PxeFile {
  path: string;
  data: Buffer | string;
}

/**
 * The iPXE script: `initrd=` names the initramfs for the kernel's EFI stub (iPXE on UEFI), as Talos's does.
 * The files are beside the script, or under `base` (a path iPXE resolves against the script's URL).
 */
export function ipxeScript(content: Pick<InstallerContent, "profile" | "version" | "cmdline">, base = ""): string {
  return [
    "#!ipxe",
    `# bronze ${content.profile} ${content.version}: the kernel and initramfs ${base ? `under ${base}` : "beside this script"}`,
    `kernel ${base}${FILES.kernel} initrd=${FILES.initramfs} ${content.cmdline}`,
    `initrd ${base}${FILES.initramfs}`,
    "boot",
    "",
  ].join("\n");
}

export const PXE_BOOTFILES = { uefi: FILES.uki, ipxe: "boot.ipxe" } as const;

export function pxeFiles(content: InstallerContent): PxeFile[] {
  return [
    { path: PXE_BOOTFILES.uefi, data: content.uki },
    { path: FILES.kernel, data: content.kernel },
    { path: FILES.initramfs, data: content.initramfs },
    { path: "cmdline", data: `${content.cmdline}\n` },
    { path: PXE_BOOTFILES.ipxe, data: ipxeScript(content) },
  ];
}

/** Writes the network boot directory `out` (whole or not at all). */
export async function writePxe(content: InstallerContent, out: string): Promise<void> {
  await makeAtomic(out, async (tmp) => {
    await mkdir(tmp);
    for (const file of pxeFiles(content)) await writeFile(join(tmp, file.path), file.data);
  });
}

/** `bronze image pxe --from INSTALLER --out DIR`. */
export async function buildPxe(options: { from: InstallerSource; arch?: Arch; out: string }): Promise<InstallerContent> {
  const content = await readInstaller(options.from, options.arch);
  await writePxe(content, options.out);
  return content;
}
