import type { Arch } from "../core/arch.ts";
import { mkdir, mkdtemp, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeAtomic } from "../core/atomic.ts";
import { run } from "../core/exec.ts";
import { InputError } from "../core/errors.ts";
import { derivedGuid } from "../core/guid.ts";
import { readInstaller, type InstallerContent, type InstallerSource } from "./boot-files.ts";
import { espFiles, fatSizeFor, writeFat, type KeyUpdate } from "./esp.ts";

/**
 * `bronze image iso`: a UEFI-bootable ISO 9660 image. Its El Torito boot image is a FAT ESP (systemd-boot,
 * loader.conf, the UKI) that is also GPT partition 2, so the same file boots as a CD-ROM and written to a
 * USB stick (hybrid). xorriso writes it; SOURCE_DATE_EPOCH fixes its dates, volume UUID and GPT GUIDs.
 */

export interface IsoResult {
  out: string;
  volumeId: string;
  espBytes: number;
  content: InstallerContent;
}

/** An ISO 9660 volume ID: at most 32 of A-Z, 0-9 and _. */
export function isoVolumeId(profile: string, version: string): string {
  return `BRONZE_${profile}_${version}`.toUpperCase().replace(/[^A-Z0-9_]/g, "_").slice(0, 32);
}

export interface XorrisoInput {
  /** the FAT image: El Torito's EFI boot image and GPT partition 2 at once */
  espImage: string;
  /** the ISO 9660 tree (empty: everything that boots is in the ESP) */
  root: string;
  volumeId: string;
  out: string;
}

/** xorriso's arguments for a hybrid UEFI ISO, as Talos's imager makes one (mkisofs emulation). */
export function xorrisoArgs(input: XorrisoInput): string[] {
  return [
    "-as", "mkisofs",
    "-iso-level", "3",
    "-volid", input.volumeId,
    "-append_partition", "2", "0xef", input.espImage,
    "-appended_part_as_gpt",
    // the boot image is the appended partition itself: the UKI is stored once
    "-e", "--interval:appended_partition_2:all::",
    "-no-emul-boot",
    // room for the GPT before the ISO 9660 volume: the file is a disk too
    "-partition_offset", "16",
    "-o", input.out,
    input.root,
  ];
}

/** Writes the ISO of an installer's boot files to `out` (atomically); with key updates, an ISO that enrols them. */
export async function writeIso(content: InstallerContent, out: string, enrol: readonly KeyUpdate[] = []): Promise<IsoResult> {
  if (enrol.length && !content.signed) {
    throw new InputError("--enroll-keys: the installer is not Secure Boot signed, so the firmware would refuse it once the keys are enrolled; build it with --secure-boot-key and --secure-boot-cert");
  }
  const volumeId = isoVolumeId(content.profile, content.version);
  const work = await mkdtemp(join(tmpdir(), "bronze-iso-"));
  try {
    const files = espFiles(content, enrol);
    const espImage = join(work, "esp.img");
    const espBytes = fatSizeFor(files);
    const serial = derivedGuid(Buffer.from(`bronze\0${content.profile}\0iso-esp`)).slice(0, 8);
    await writeFat(files, espImage, { sizeBytes: espBytes, label: "ESP", serial, epoch: content.epoch, fat32: false }, work);
    const root = join(work, "iso-root");
    await mkdir(root);
    await utimes(root, content.epoch, content.epoch);
    // SOURCE_DATE_EPOCH: xorriso takes every date, the volume UUID and the GPT GUIDs from it
    const env = { SOURCE_DATE_EPOCH: String(content.epoch), TZ: "UTC" };
    await makeAtomic(out, (tmp) => run("xorriso", xorrisoArgs({ espImage, root, volumeId, out: tmp }), { env }));
    return { out, volumeId, espBytes, content };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** `bronze image iso --from INSTALLER --out FILE [--enroll-keys DIR]`. */
export async function buildIso(options: { from: InstallerSource; arch?: Arch; out: string; enrollKeys?: string }): Promise<IsoResult> {
  const content = await readInstaller(options.from, options.arch);
  const enrol = options.enrollKeys ? (await (await import("../secureboot/keys.ts")).enrolmentUpdates(options.enrollKeys)).map(({ role, data }) => ({ role, data })) : [];
  return writeIso(content, options.out, enrol);
}
