import { mkdir, utimes, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { run } from "../core/exec.ts";
import { directoriesAbove } from "../core/paths.ts";
import { ukiFileName, type InstallerContent } from "./boot-files.ts";
import { SECTOR } from "./gpt.ts";

/** loader.conf: boot the default entry at once, no command line editing. */
const LOADER_CONF = "timeout 0\neditor no\n";

export interface EspFile {
  path: string;
  data: Buffer | string;
}

/** A signed Secure Boot variable update (PK.auth, KEK.auth, db.auth): public data, signed by the key above it. */
export interface KeyUpdate {
  role: string;
  data: Buffer;
}

/**
 * What a bronze ESP holds: systemd-boot at the removable-media path and at its own, the UKI, loader.conf;
 * with key updates, those too in loader/keys/auto/, which systemd-boot enrols on a machine in setup mode.
 */
export function espFiles(content: InstallerContent, enrol: readonly KeyUpdate[] = []): EspFile[] {
  // force: enrol without the menu (systemd-boot still counts down on a physical machine, not in a VM)
  const loaderConf = enrol.length ? `${LOADER_CONF}secure-boot-enroll force\n` : LOADER_CONF;
  return [
    { path: `EFI/BOOT/${content.arch.efiBootFile}`, data: content.bootloader },
    { path: `EFI/systemd/${content.arch.bootloaderName}`, data: content.bootloader },
    { path: `EFI/Linux/${ukiFileName(content.version)}`, data: content.uki },
    { path: "loader/loader.conf", data: loaderConf },
    ...enrol.map((u) => ({ path: `loader/keys/auto/${u.role}.auth`, data: u.data })),
  ];
}

/** What the FAT image of writeFat grows by: 64 KiB at a time, each whole in the ISO's 2 KiB blocks. */
const FAT_GRAIN = 64 * 1024;
/** FAT16's fixed root directory (512 entries of 32 bytes) and its boot sector. */
const FAT_ROOT_AND_BOOT = 512 * 32 + SECTOR;
/** Clusters for each subdirectory's entries, long names included: more than any ESP directory of ours needs. */
const DIRECTORY_CLUSTERS = 4;

/**
 * The smallest FAT image, in whole FAT_GRAIN, that these files fit in with a grain to spare: their
 * clusters (one sector each), their directories', the root directory, and two FATs of 4 bytes per
 * sector of the image (FAT32's entries, the widest mkfs.vfat may choose; FAT12's and FAT16's are
 * narrower). No more: every ISO carries it.
 */
export function fatSizeFor(files: readonly EspFile[]): number {
  const fileClusters = files.reduce((sum, f) => sum + Math.ceil(Buffer.byteLength(f.data) / SECTOR), 0);
  const clusters = fileClusters + directoriesAbove(files.map((f) => f.path)).size * DIRECTORY_CLUSTERS;
  const content = clusters * SECTOR + FAT_ROOT_AND_BOOT + FAT_GRAIN;
  const withTables = content / (1 - (2 * 4) / SECTOR);
  return Math.ceil(withTables / FAT_GRAIN) * FAT_GRAIN;
}

export interface FatOptions {
  sizeBytes: number;
  label: string;
  /** the volume serial, 8 hex digits */
  serial: string;
  epoch: number;
  /** FAT32 (a disk's ESP); else mkfs.vfat's choice for the size */
  fat32: boolean;
}

/** Writes a FAT image of `files` to `out` (mkfs.vfat, mtools; no mount): same files, options and epoch, same bytes. */
export async function writeFat(files: readonly EspFile[], out: string, options: FatOptions, work: string): Promise<void> {
  const tree = join(work, "fat-tree");
  for (const { path, data } of files) {
    await mkdir(dirname(join(tree, path)), { recursive: true });
    await writeFile(join(tree, path), data);
  }
  // every file and directory at the epoch: mcopy -m keeps these times
  const paths = files.map((f) => f.path);
  const directories = directoriesAbove(paths);
  for (const path of [...paths, ...directories]) await utimes(join(tree, path), options.epoch, options.epoch);
  // FAT keeps local times: in UTC, the same epoch makes the same bytes whatever the caller's time zone
  const env = { SOURCE_DATE_EPOCH: String(options.epoch), MTOOLS_SKIP_CHECK: "1", TZ: "UTC" };
  const fatType = options.fat32 ? ["-F", "32"] : [];
  await run("mkfs.vfat", ["-C", ...fatType, "-S", String(SECTOR), "-s", "1", "-n", options.label, "-i", options.serial, "--invariant", out, String(options.sizeBytes / 1024)], { env });
  const tops = [...new Set(paths.map((p) => p.split("/")[0] as string))].sort();
  await run("mcopy", ["-i", out, "-s", "-m", "-Q", ...tops.map((t) => join(tree, t)), "::/"], { env });
}
