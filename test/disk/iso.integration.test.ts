import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS } from "../../src/boot/qemu.ts";
import { bronze } from "../helpers/cli.ts";
import { builtImage } from "../helpers/build.ts";
import { PROJECT_ROOT } from "../helpers/tmp.ts";

// bronze image iso: a hybrid UEFI ISO (El Torito EFI image = GPT partition 2 = an ESP with
// systemd-boot and the UKI), read back by xorriso, isoinfo, sgdisk and mtools, booted by OVMF as a
// CD-ROM and, written to a disk, as that disk.

const OUT = join(PROJECT_ROOT, "_out", "minimal");
let dir = "";
let manifest = { version: "", sourceDateEpoch: 0 };

before(async () => {
  await builtImage("minimal");
  manifest = JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as typeof manifest;
  dir = await mkdtemp(join(tmpdir(), "bronze-iso-test-"));
}, { timeout: 30 * 60_000 });

after(() => rm(dir, { recursive: true, force: true }));

async function iso(name: string, from = join(OUT, "installer"), env: Record<string, string> = {}): Promise<string> {
  const out = join(dir, name);
  const result = await bronze(["image", "iso", "--from", from, "--out", out], env);
  assert.equal(result.exitCode, 0, String(result.all));
  assert.match(String(result.stdout), new RegExp(`^iso ${out}: \\d+ bytes, volume BRONZE_MINIMAL_`));
  return out;
}

/** The byte offset of GPT partition `n` as sgdisk reads it. */
async function partitionOffset(image: string, n: number): Promise<number> {
  const info = (await execa("sgdisk", ["-i", String(n), image])).stdout;
  const first = /First sector: (\d+)/.exec(info)?.[1];
  assert.ok(first, info);
  return Number(first) * 512;
}

test("xorriso, isoinfo and sgdisk read the ISO back: a UEFI El Torito image that is GPT partition 2, an ESP holding the installer's systemd-boot and UKI; dated by SOURCE_DATE_EPOCH; the same bytes from the layout and from its tar in another time zone", async () => {
  const fromDir = await iso("a.iso");
  const fromTar = await iso("b.iso", join(OUT, "installer.oci.tar"), { TZ: "Pacific/Kiritimati" });
  assert.deepEqual(await readFile(fromDir), await readFile(fromTar), "reproducible");

  const torito = (await execa("xorriso", ["-indev", fromDir, "-report_el_torito", "plain"], { all: true })).all;
  assert.match(torito, /Boot record {2}: El Torito , MBR protective-msdos-label .*GPT/);
  assert.match(torito, /El Torito boot img : {3}1 {2}UEFI {2}y {3}none/, torito);
  const pvd = (await execa("xorriso", ["-indev", fromDir, "-pvd_info"], { all: true })).all;
  const epoch = new Date(manifest.sourceDateEpoch * 1000).toISOString().replace(/\D/g, "").slice(0, 14);
  assert.match(pvd, new RegExp(`Creation Time: ${epoch}00`), pvd);
  assert.match(pvd, new RegExp(`Modif\\. Time {2}: ${epoch}00`));
  const info = (await execa("isoinfo", ["-d", "-i", fromDir])).stdout;
  assert.match(info, new RegExp(`Volume id: BRONZE_MINIMAL_${manifest.version.replace(/\W/g, "_")}`));
  assert.match(info, /El Torito VD version 1 found/);

  const verified = await execa("sgdisk", ["-v", fromDir], { reject: false, all: true });
  assert.match(verified.all, /No problems found/, verified.all);
  assert.match((await execa("sgdisk", ["-i", "2", fromDir])).stdout, /Partition GUID code: C12A7328-F81F-11D2-BA4B-00A0C93EC93B \(EFI system partition\)/);
  const esp = `${fromDir}@@${await partitionOffset(fromDir, 2)}`;
  const mtools = { env: { MTOOLS_SKIP_CHECK: "1" } };
  const copied = join(dir, "uki-from-iso.efi");
  await execa("mcopy", ["-i", esp, `::/EFI/Linux/bronze-${manifest.version}.efi`, copied], mtools);
  assert.deepEqual(await readFile(copied), await readFile(join(OUT, "uki.efi")), "the UKI on the ISO's ESP is the build's");
  await execa("mcopy", ["-i", esp, "::/EFI/BOOT/BOOTX64.EFI", join(dir, "boot.efi")], mtools);
  assert.deepEqual(await readFile(join(dir, "boot.efi")), await readFile("/usr/lib/systemd/boot/efi/systemd-bootx64.efi"));
  assert.equal((await execa("mtype", ["-i", esp, "::/loader/loader.conf"], mtools)).stdout, "timeout 0\neditor no");
});

test("the ISO boots to init's ready line as a CD-ROM, and written to a disk (a USB stick) it boots from that disk", async () => {
  const image = await iso("boot.iso");
  const asCd = await boot({ kind: "cdrom", iso: image }, BOOT_DEFAULTS);
  assert.equal(asCd.ready.root, "ro");
  assert.ok(asCd.console.some((line) => line.includes("DVD-ROM")), "the firmware booted the CD-ROM");
  const stick = join(dir, "stick.img");
  await copyFile(image, stick);
  const asDisk = await bronze(["boot", stick, "--as-disk", "-q"]);
  assert.equal(asDisk.exitCode, 0, String(asDisk.all));
  assert.match(String(asDisk.stdout), /bronze: boot ok in [\d.]+ s: root=ro/);
});

test("image iso refuses what is not an installer, and keys to enrol for an unsigned one; boot --as-disk a file that is no disk; exit code 2 with the fix", async () => {
  const notInstaller = await bronze(["image", "iso", "--from", join(OUT, "uki.efi"), "--out", join(dir, "never.iso")]);
  assert.equal(notInstaller.exitCode, 2, String(notInstaller.all));
  assert.match(String(notInstaller.stderr), /uki\.efi: not a tar \(.*\); give an OCI image layout directory or a tar of one/);
  await assert.rejects(readFile(join(dir, "never.iso")), { code: "ENOENT" });
  const keys = join(dir, "keys");
  assert.equal((await bronze(["keys", "generate", keys])).exitCode, 0);
  const unsigned = await bronze(["image", "iso", "--from", join(OUT, "installer"), "--out", join(dir, "never.iso"), "--enroll-keys", keys]);
  assert.equal(unsigned.exitCode, 2, String(unsigned.all));
  assert.match(String(unsigned.stderr), /--enroll-keys: the installer is not Secure Boot signed, .*; build it with --secure-boot-key and --secure-boot-cert/);
  await assert.rejects(readFile(join(dir, "never.iso")), { code: "ENOENT" });
  const noDisk = await bronze(["boot", join(OUT, "uki.efi"), "--as-disk"]);
  assert.equal(noDisk.exitCode, 2, String(noDisk.all));
  assert.match(String(noDisk.stderr), /--as-disk: .*uki\.efi is not a GPT disk image; give a raw disk \(bronze image disk\) or an ISO \(bronze image iso\)/);
});
