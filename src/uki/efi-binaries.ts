import { join } from "node:path";
import type { Arch } from "../core/arch.ts";
import { unpackedDebianBinary } from "../sources/debian-binary.ts";

/** Where an architecture's systemd-stub and systemd-boot are on this machine. */
export interface EfiBinaryPaths {
  stub: string;
  bootloader: string;
}

/**
 * The stub and the bootloader for `arch`: the host's installed ones, or those of the pinned package of
 * that architecture (fetched, verified and unpacked into the cache on first use).
 */
export async function efiBinaries(arch: Arch, ctx: { cacheDir: string; logFile: string }): Promise<EfiBinaryPaths> {
  if (arch.efi.kind === "host") return { stub: arch.stub, bootloader: arch.bootloader };
  const root = await unpackedDebianBinary(arch.efi, { cacheDir: ctx.cacheDir, definedIn: "src/core/arch.ts", logFile: ctx.logFile });
  return { stub: join(root, arch.stub), bootloader: join(root, arch.bootloader) };
}
