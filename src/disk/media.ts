import type { Arch } from "../core/arch.ts";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BOOT_MEDIA, DISK_FORMATS, diskFormatOf, type BootMedium, type DiskFormat } from "../core/outputs.ts";
import { readInstaller, type InstallerContent, type InstallerSource } from "./boot-files.ts";
import { convertDisk } from "./formats.ts";
import { writeDisk, type DiskResult } from "./image.ts";
import { writeIso } from "./iso.ts";
import { writePxe } from "./pxe.ts";

/**
 * Writes boot media of an installer's boot files, each at the path `target` gives it (in BOOT_MEDIA's
 * order): the raw disk once for all disk formats (kept only when `disk` is asked for), the ISO and the
 * network boot directory apart.
 */
export async function writeBootMedia(
  content: InstallerContent,
  media: readonly BootMedium[],
  target: (medium: BootMedium) => Promise<string>,
  diskSize: number,
): Promise<{ written: Map<BootMedium, string>; disk?: DiskResult }> {
  const written = new Map<BootMedium, string>();
  let disk: DiskResult | undefined;
  const asked = BOOT_MEDIA.filter((m) => media.includes(m));
  const work = await mkdtemp(join(tmpdir(), "bronze-media-"));
  try {
    const formats = asked.filter((m) => diskFormatOf(m) !== undefined);
    if (formats.length > 0) {
      const raw = formats.includes("disk") ? await target("disk") : join(work, "disk.raw");
      disk = await writeDisk(content, raw, diskSize);
      if (formats.includes("disk")) written.set("disk", raw);
      for (const medium of formats.filter((m) => m !== "disk")) {
        const out = await target(medium);
        const { sizeBytes, diskGuid } = disk;
        await convertDisk({ raw, sizeBytes, epoch: content.epoch, diskGuid }, diskFormatOf(medium) as Exclude<DiskFormat, "raw">, out);
        written.set(medium, out);
      }
    }
    for (const [medium, write] of [["iso", writeIso], ["pxe", writePxe]] as const) {
      if (!asked.includes(medium)) continue;
      const out = await target(medium);
      await write(content, out);
      written.set(medium, out);
    }
    return { written, disk };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** `bronze image disk`: the disk of an installer image in `format`, written to `out` (through a temporary file). */
export async function buildDisk(options: { from: InstallerSource; arch?: Arch; out: string; sizeBytes: number; format: DiskFormat }): Promise<DiskResult & { format: DiskFormat }> {
  const content = await readInstaller(options.from, options.arch);
  const { disk } = await writeBootMedia(content, [DISK_FORMATS[options.format]], () => Promise.resolve(options.out), options.sizeBytes);
  return { ...(disk as DiskResult), out: options.out, format: options.format };
}
