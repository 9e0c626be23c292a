import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { fatSizeFor, writeFat, type EspFile } from "../../src/disk/esp.ts";
import { tempDir } from "../helpers/tmp.ts";

// The ISO's ESP is sized by fatSizeFor: everything must fit (mkfs.vfat and mcopy say so), with little to spare.

const KiB = 1024;
const env = { MTOOLS_SKIP_CHECK: "1" };

/** An ESP shaped as the ISO's: two systemd-boots, a UKI, loader.conf and, with keys to enrol, their updates. */
function espLike(ukiBytes: number, keys: boolean): EspFile[] {
  const bootloader = randomBytes(140 * KiB);
  return [
    { path: "EFI/BOOT/BOOTX64.EFI", data: bootloader },
    { path: "EFI/systemd/systemd-bootx64.efi", data: bootloader },
    { path: "EFI/Linux/bronze-default-0.1.0-with-a-long-name.efi", data: randomBytes(ukiBytes) },
    { path: "loader/loader.conf", data: "timeout 0\neditor no\n" },
    ...(keys ? ["PK", "KEK", "db"].map((role) => ({ path: `loader/keys/auto/${role}.auth`, data: randomBytes(2 * KiB + 17) })) : []),
  ];
}

/** The free bytes of a FAT image, as mtools' mdir reports them. */
async function freeBytes(image: string): Promise<number> {
  const { stdout } = await execa("mdir", ["-i", image, "-/", "::"], { env });
  const free = /([\d ]+) bytes free/.exec(stdout)?.[1];
  assert.ok(free, `mdir printed no free space:\n${stdout}`);
  return Number(free.replaceAll(" ", ""));
}

for (const [name, ukiBytes, keys, fat] of [
  ["the default image's", 8_350_720, false, "FAT16"],
  ["a signed image enrolling its keys", 8_352_000, true, "FAT16"],
  ["the minimal image's", 4_300_000, false, "FAT16"],
  ["a tiny (FAT12) one", 300 * KiB, false, "FAT12"],
] as const) {
  test(`fatSizeFor: ${name} ESP fits, every file read back whole, with at most 256 KiB free`, async () => {
    const work = await tempDir("esp-size-");
    const files = espLike(ukiBytes, keys);
    const image = join(work, "esp.img");
    const size = fatSizeFor(files);
    assert.equal(size % (64 * KiB), 0, "a whole number of 64 KiB");
    await writeFat(files, image, { sizeBytes: size, label: "ESP", serial: "0badcafe", epoch: 0, fat32: false }, work);
    assert.equal((await stat(image)).size, size);
    assert.match((await execa("minfo", ["-i", image, "::"], { env })).stdout, new RegExp(`disk type="${fat} *"`));
    const free = await freeBytes(image);
    assert.ok(free > 0 && free <= 256 * KiB, `${free} bytes free in a ${size}-byte image`);
    for (const file of files) {
      const { stdout } = await execa("mtype", ["-i", image, `::/${file.path}`], { env, encoding: "buffer", stripFinalNewline: false });
      assert.ok(Buffer.from(stdout).equals(Buffer.from(file.data)), `${file.path} read back differs`);
    }
  });
}
