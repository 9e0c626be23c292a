import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeAtomic } from "../core/atomic.ts";
import { InputError } from "../core/errors.ts";
import { derivedGuid } from "../core/guid.ts";
import type { InstallerContent } from "./boot-files.ts";
import { espFiles, writeFat } from "./esp.ts";
import { gptLayout, PARTITION_TYPES, SECTOR, type PlacedPartition } from "./gpt.ts";
import { ESP_SIZE, MIN_DISK_SIZE } from "./sizes.ts";

/**
 * `bronze image disk`: a bootable raw disk from an installer image, without loop devices or
 * mounts: a GPT whose GUIDs are derived from the profile and the labels, an ESP made as a file
 * (mkfs.vfat, mtools) holding systemd-boot and the UKI, and a /var partition for the data.
 */

export interface DiskResult {
  out: string;
  sizeBytes: number;
  diskGuid: string;
  partitions: PlacedPartition[];
  content: InstallerContent;
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
    const esp = join(work, "esp.img");
    await writeFat(espFiles(content), esp, { sizeBytes: ESP_SIZE, label: "ESP", serial: guid("ESP").slice(0, 8), epoch: content.epoch, fat32: true }, work);
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
