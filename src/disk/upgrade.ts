import { ARCHES, type Arch } from "../core/arch.ts";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InputError } from "../core/errors.ts";
import { probe, run } from "../core/exec.ts";
import { readGpt } from "./disk-file.ts";
import { GptError, PARTITION_TYPES } from "./gpt.ts";
import { readInstaller, ukiFileName, type InstallerSource } from "./boot-files.ts";

/**
 * `bronze upgrade`: A/B with systemd-boot's boot counting. The new UKI goes beside the current
 * one as EFI/Linux/bronze-<version>+<tries>.efi: systemd-boot boots the newest version first,
 * counting each try in the file name; init drops the counter once the boot is good; after
 * <tries> boots that never got there, the entry is bad and the previous one boots again.
 */

export interface BootEntry {
  file: string;
  version: string;
  /** tries left and done, for an entry that is still being tried */
  counter?: { left: number; done: number };
}

const ENTRY = /^bronze-(.+?)(?:\+(\d+)(?:-(\d+))?)?\.efi$/i;

export function parseEntry(file: string): BootEntry | undefined {
  const m = ENTRY.exec(file);
  if (!m) return undefined;
  const [, version, left, done] = m;
  return { file, version: version as string, ...(left !== undefined ? { counter: { left: Number(left), done: Number(done ?? 0) } } : {}) };
}

/** Versions compared as systemd-boot sorts them: runs of digits as numbers, the rest as text. */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) => v.match(/\d+|\D+/g) ?? [];
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined || y === undefined) return x === undefined ? -1 : 1;
    const nx = /^\d/.test(x);
    const ny = /^\d/.test(y);
    const c = nx && ny ? Number(x) - Number(y) : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return Math.sign(c);
  }
  return 0;
}

export interface UpgradePlan {
  /** the name the new UKI gets, with its tries */
  write: string;
  /** the entry kept as the fallback: the newest one known good (no counter) */
  fallback: BootEntry;
  /** older entries, and ones that were never confirmed */
  remove: string[];
}

/** What an upgrade to `version` does to the ESP's entries. Pure. */
export function planUpgrade(files: readonly string[], version: string, tries: number): UpgradePlan {
  const entries = files.map(parseEntry).filter((e): e is BootEntry => e !== undefined);
  const same = entries.find((e) => e.version === version);
  if (same) throw new InputError(`version ${version} is on the disk already (${same.file}); build the upgrade with another version (BRONZE_VERSION)`);
  const good = entries.filter((e) => !e.counter).sort((a, b) => compareVersions(b.version, a.version));
  const fallback = good[0];
  if (!fallback) throw new InputError("the disk has no boot entry known to be good to fall back to; boot the current version to completion first");
  return {
    write: `bronze-${version}+${tries}.efi`,
    fallback,
    remove: entries.filter((e) => e !== fallback).map((e) => e.file),
  };
}

export interface UpgradeResult {
  version: string;
  written: string;
  fallback: string;
  removed: string[];
  signed: boolean;
}

/** The byte offset of the disk's EFI system partition. */
async function espOffset(disk: string): Promise<number> {
  try {
    const esp = (await readGpt(disk)).partitions.find((p) => p.type === PARTITION_TYPES.esp);
    if (!esp) throw new InputError(`--disk ${disk}: has no EFI system partition`);
    return esp.offset;
  } catch (e) {
    if (e instanceof GptError) throw new InputError(`--disk ${disk}: ${e.message}`);
    if ((e as NodeJS.ErrnoException).code) throw new InputError(`--disk ${disk}: cannot open it; give a disk image made by bronze image disk`);
    throw e;
  }
}

/** The architecture a disk boots: the one whose removable-media boot file its ESP holds. */
async function diskArch(disk: string, image: string): Promise<Arch> {
  const listing = await probe("mdir", ["-i", image, "-b", "::/EFI/BOOT"], { env: { MTOOLS_SKIP_CHECK: "1" } });
  const names = listing.exitCode === 0 ? listing.stdout.split("\n").map((l) => l.replace(/^::\/EFI\/BOOT\//, "").toUpperCase()) : [];
  const arch = ARCHES.find((a) => names.includes(a.efiBootFile));
  if (!arch) throw new InputError(`--disk ${disk}: its ESP has none of ${ARCHES.map((a) => `EFI/BOOT/${a.efiBootFile}`).join(", ")}; give a disk made by bronze image disk`);
  return arch;
}

/** Installs the installer's UKI on the disk's ESP as the next version to try; keeps the current one as fallback. */
export async function upgradeDisk(options: { disk: string; from: InstallerSource; tries: number }): Promise<UpgradeResult> {
  if (!Number.isInteger(options.tries) || options.tries < 1 || options.tries > 9) throw new InputError(`--tries ${options.tries}: give 1 to 9`);
  const image = `${options.disk}@@${await espOffset(options.disk)}`;
  const arch = await diskArch(options.disk, image);
  const content = await readInstaller(options.from, arch, `the disk ${options.disk} (EFI/BOOT/${arch.efiBootFile})`);
  const env = { MTOOLS_SKIP_CHECK: "1", SOURCE_DATE_EPOCH: String(content.epoch) };
  const listing = await probe("mdir", ["-i", image, "-b", "::/EFI/Linux"], { env });
  if (listing.exitCode !== 0) throw new InputError(`--disk ${options.disk}: its ESP has no EFI/Linux directory; give a disk made by bronze image disk`);
  const files = listing.stdout.split("\n").filter(Boolean).map((l) => l.replace(/^::\/EFI\/Linux\//, ""));
  const plan = planUpgrade(files, content.version, options.tries);
  const work = await mkdtemp(join(tmpdir(), "bronze-upgrade-"));
  try {
    const uki = join(work, ukiFileName(content.version));
    await writeFile(uki, content.uki);
    // written under a name systemd-boot ignores, then renamed: never a half-written entry
    const target = `::/EFI/Linux/${plan.write}`;
    await run("mcopy", ["-i", image, "-o", uki, `${target}.new`], { env });
    await run("mren", ["-i", image, `${target}.new`, target], { env });
    for (const file of plan.remove) await run("mdel", ["-i", image, `::/EFI/Linux/${file}`], { env });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { version: content.version, written: plan.write, fallback: plan.fallback.file, removed: plan.remove, signed: content.signed };
}
