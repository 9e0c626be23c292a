// Boot media in make bench: the ISO and each disk format beside the bare tools run on the same input,
// the default ISO's size, and power-on to ready of a UKI, the ISO and the disk against the firmware floor.
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS, type BootTarget } from "../src/boot/qemu.ts";
import { FILES, type DiskFormat } from "../src/core/outputs.ts";
import { readInstaller } from "../src/disk/boot-files.ts";
import { espFiles, fatSizeFor } from "../src/disk/esp.ts";
import { convertDisk } from "../src/disk/formats.ts";
import { writeDisk } from "../src/disk/image.ts";
import { isoVolumeId, writeIso, xorrisoArgs } from "../src/disk/iso.ts";
import { efiFloorApp } from "../test/helpers/efi-floor.ts";
import { pair, RUNS, stats, type Figure } from "./harness.ts";

const DISK_SIZE = 1 << 30;

/** The same ISO by hand: the three tools bronze runs, on the same files. */
async function isoByHand(scratch: string, content: Awaited<ReturnType<typeof readInstaller>>, out: string): Promise<void> {
  const tree = join(scratch, "iso-hand");
  const files = espFiles(content);
  for (const f of files) {
    await mkdir(join(tree, f.path, ".."), { recursive: true });
    await writeFile(join(tree, f.path), f.data);
  }
  const esp = join(scratch, "iso-hand.esp");
  const env = { SOURCE_DATE_EPOCH: String(content.epoch), MTOOLS_SKIP_CHECK: "1", TZ: "UTC" };
  await execa("rm", ["-f", esp]);
  await execa("mkfs.vfat", ["-C", "-S", "512", "-s", "1", "-n", "ESP", "--invariant", esp, String(fatSizeFor(files) / 1024)], { env });
  await execa("mcopy", ["-i", esp, "-s", "-m", "-Q", join(tree, "EFI"), join(tree, "loader"), "::/"], { env });
  await mkdir(join(scratch, "iso-root"), { recursive: true });
  await execa("xorriso", xorrisoArgs({ espImage: esp, root: join(scratch, "iso-root"), volumeId: isoVolumeId(content.profile, content.version), out }), { env });
}

/** The bare tool for each format, on the same raw disk. */
const BARE: Record<Exclude<DiskFormat, "raw">, (raw: string, out: string) => Promise<unknown>> = {
  "raw.zst": (raw, out) => execa("zstd", ["-19", "-T0", "-q", "-f", raw, "-o", out]),
  "raw.xz": (raw, out) => execa("sh", ["-c", 'xz -6 -T2 -k -c "$1" > "$2"', "sh", raw, out]),
  qcow2: (raw, out) => execa("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", raw, out]),
  // Talos's way; its footer carries the clock's time
  vhd: (raw, out) => execa("qemu-img", ["convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size", raw, out]),
  // qemu-img's stream-optimized VMDK, the OVA's bulk (bronze adds the descriptor and the tar)
  ova: (raw, out) => execa("qemu-img", ["convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized,adapter_type=lsilogic", raw, out]),
  gcp: (raw, out) => execa("sh", ["-c", 'cd "$(dirname "$1")" && tar --format=oldgnu -S -cf - "$(basename "$1")" | gzip -9 -n > "$2"', "sh", raw, out]),
};

export async function mediaFigures(scratch: string, outDir: string): Promise<Figure[]> {
  const content = await readInstaller(join(outDir, FILES.installerLayout));
  const figures: Figure[] = [];
  const ours = join(scratch, "ours.iso");
  figures.push(
    await pair(
      `ISO of ${content.profile} (bronze, in process) vs the same tools by hand (mkfs.vfat, mcopy, xorriso)`,
      "<= 1.05",
      () => isoByHand(scratch, content, join(scratch, "hand.iso")),
      () => writeIso(content, ours),
    ),
  );
  const size = (await stat(ours)).size;
  figures.push({ name: `size of the ${content.profile} ISO (Talos's: 78.3 MB)`, unit: "bytes", value: { median: size, min: size, max: size }, goal: "<= 10000000" });

  const raw = join(scratch, "disk.raw");
  const disk = await writeDisk(content, raw, DISK_SIZE);
  const input = { raw, sizeBytes: disk.sizeBytes, epoch: content.epoch, diskGuid: disk.diskGuid };
  for (const format of Object.keys(BARE) as (keyof typeof BARE)[]) {
    figures.push(await pair(`disk format ${format} of a 1 GiB ${content.profile} disk: bronze vs the bare tool`, "<= 1.05", () => BARE[format](raw, join(scratch, `bare.${format}`)), () => convertDisk(input, format, join(scratch, `ours.${format}`))));
  }
  return figures;
}

/** Time to the ready line of `target` against the firmware floor (OVMF booting an EFI program that prints one at once). */
async function againstFloor(name: string, floor: string, target: () => Promise<BootTarget>): Promise<Figure> {
  const readyAfter = async (t: BootTarget) => (await boot(t, BOOT_DEFAULTS)).readyAfterMs;
  return pair(name, "<= 1.5", () => readyAfter({ kind: "uki", uki: floor }), async () => readyAfter(await target()), true);
}

export async function bootFloorFigures(scratch: string, outDir: string): Promise<Figure[]> {
  const floor = join(scratch, "floor.efi");
  await writeFile(floor, efiFloorApp());
  const content = await readInstaller(join(outDir, FILES.installerLayout));
  const iso = join(scratch, "floor-cmp.iso");
  await writeIso(content, iso);
  const disk = join(scratch, "floor-cmp.raw");
  const profile = content.profile;
  const floorOnly: number[] = [];
  for (let i = 0; i < Math.min(RUNS, 3); i++) floorOnly.push((await boot({ kind: "uki", uki: floor }, BOOT_DEFAULTS)).readyAfterMs);
  return [
    { name: "firmware floor: OVMF (TCG) to an EFI program's first line", unit: "ms", value: stats(floorOnly) },
    await againstFloor(`power-on to ready, ${profile} UKI vs the firmware floor`, floor, () => Promise.resolve({ kind: "uki", uki: join(outDir, FILES.uki) })),
    await againstFloor(`power-on to ready, ${profile} ISO (CD-ROM) vs the firmware floor`, floor, () => Promise.resolve({ kind: "cdrom", iso })),
    // a fresh disk each time: the first boot formats /var, as a machine's first boot does
    await againstFloor(`power-on to ready, ${profile} disk (first boot) vs the firmware floor`, floor, async () => {
      await writeDisk(content, disk, DISK_SIZE);
      return { kind: "disk", disk };
    }),
  ];
}
