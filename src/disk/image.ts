import { DEFAULT_ARCH, type Arch } from "../core/arch.ts";
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { derivedGuid } from "../core/guid.ts";
import { InputError } from "../core/errors.ts";
import { run } from "../core/exec.ts";
import { openLayout, readImage } from "../oci/layout-read.ts";
import { readTar } from "../oci/tar-read.ts";
import { ESP_SIZE, MIN_DISK_SIZE } from "./sizes.ts";
import { gptLayout, PARTITION_TYPES, SECTOR, type PlacedPartition } from "./gpt.ts";
import { FILES } from "../core/outputs.ts";
import { writeAtomic } from "../core/atomic.ts";

/**
 * `bronze image disk`: a bootable raw disk from an installer image, without loop devices or
 * mounts: a GPT whose GUIDs are derived from the profile and the labels, an ESP made as a file
 * (mkfs.vfat, mtools) holding systemd-boot and the UKI, and a /var partition for the data.
 */


export interface InstallerContent {
  /** the architecture its boot files are for: it names them on the ESP */
  arch: Arch;
  version: string;
  profile: string;
  epoch: number;
  uki: Buffer;
  bootloader: Buffer;
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
  const manifest = JSON.parse(need(FILES.manifest).toString()) as { version?: string; profile?: string; sourceDateEpoch?: number };
  if (!manifest.version || !manifest.profile || manifest.sourceDateEpoch === undefined) throw new InputError(`${source}: its manifest.json lacks version, profile or sourceDateEpoch`);
  const signed = files.has(FILES.signedUki) && files.has(FILES.signedBootloader);
  return {
    arch,
    version: manifest.version,
    profile: manifest.profile,
    epoch: manifest.sourceDateEpoch,
    uki: need(signed ? FILES.signedUki : FILES.uki),
    bootloader: need(signed ? FILES.signedBootloader : FILES.bootloader),
    signed,
  };
}

/** The UKI's file name on the ESP; systemd-boot lists EFI/Linux/*.efi and boots the newest version. */
export const ukiFileName = (version: string) => `bronze-${version}.efi`;

/** loader.conf: boot the default entry at once, no command line editing. */
const LOADER_CONF = "timeout 0\neditor no\n";

/** Builds the ESP as a FAT32 file: same content and epoch, same bytes. */
async function buildEsp(content: InstallerContent, volumeGuid: string, work: string): Promise<string> {
  const tree = join(work, "esp");
  const files: [string, Buffer | string][] = [
    [`EFI/BOOT/${content.arch.efiBootFile}`, content.bootloader],
    [`EFI/systemd/${content.arch.bootloaderName}`, content.bootloader],
    [`EFI/Linux/${ukiFileName(content.version)}`, content.uki],
    ["loader/loader.conf", LOADER_CONF],
  ];
  for (const [path, data] of files) {
    await mkdir(dirname(join(tree, path)), { recursive: true });
    await writeFile(join(tree, path), data);
  }
  // every file and directory at the epoch: mcopy -m keeps these times
  const directories = new Set(files.flatMap(([path]) => path.split("/").slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join("/"))));
  for (const path of [...files.map(([p]) => p), ...directories]) await utimes(join(tree, path), content.epoch, content.epoch);
  const esp = join(work, "esp.img");
  // FAT keeps local times: in UTC, the same epoch makes the same bytes whatever the caller's time zone
  const env = { SOURCE_DATE_EPOCH: String(content.epoch), MTOOLS_SKIP_CHECK: "1", TZ: "UTC" };
  await run("mkfs.vfat", ["-C", "-F", "32", "-S", String(SECTOR), "-s", "1", "-n", "ESP", "-i", volumeGuid.slice(0, 8), "--invariant", esp, String(ESP_SIZE / 1024)], { env });
  await run("mcopy", ["-i", esp, "-s", "-m", "-Q", join(tree, "EFI"), join(tree, "loader"), "::/"], { env });
  return esp;
}

export interface DiskResult {
  out: string;
  sizeBytes: number;
  diskGuid: string;
  partitions: PlacedPartition[];
  content: InstallerContent;
}

/** Writes the disk image to `out` (through a temporary file): sparse, with the /var partition left empty for init to format. */
export async function buildDisk(options: { from: string; out: string; sizeBytes: number }): Promise<DiskResult> {
  checkDiskSize(options.sizeBytes);
  return writeDisk(await readInstaller(options.from), options.out, options.sizeBytes);
}

function checkDiskSize(sizeBytes: number): void {
  if (sizeBytes < MIN_DISK_SIZE) throw new InputError(`--size ${sizeBytes}: a disk needs at least ${MIN_DISK_SIZE >> 20} MiB (ESP ${ESP_SIZE >> 20} MiB and room for /var)`);
}

/** The disk of an installer's boot files, written to `out` (atomically: a temporary name, then renamed). */
export async function writeDisk(content: InstallerContent, out: string, sizeBytes: number): Promise<DiskResult> {
  checkDiskSize(sizeBytes);
  const guid = (label: string) => derivedGuid(Buffer.from(`bronze\0${content.profile}\0${label}`));
  const diskGuid = guid("disk");
  const layout = gptLayout(diskGuid, Math.floor(sizeBytes / SECTOR) * SECTOR, [
    { label: "ESP", type: PARTITION_TYPES.esp, guid: guid("ESP"), size: ESP_SIZE },
    { label: "var", type: PARTITION_TYPES.var, guid: guid("var") },
  ]);
  const work = await mkdtemp(join(tmpdir(), "bronze-disk-"));
  try {
    const esp = await buildEsp(content, guid("ESP"), work);
    const espData = await readFile(esp);
    await writeAtomic(out, async (handle) => {
      await handle.truncate(layout.sizeBytes);
      await handle.write(layout.head, 0, layout.head.length, 0);
      await handle.write(espData, 0, espData.length, (layout.partitions[0] as PlacedPartition).offset);
      await handle.write(layout.tail, 0, layout.tail.length, layout.tailOffset);
    });
    return { out, sizeBytes: layout.sizeBytes, diskGuid, partitions: layout.partitions, content };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
