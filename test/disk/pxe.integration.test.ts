import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { boot, BOOT_DEFAULTS } from "../../src/boot/qemu.ts";
import { bronze } from "../helpers/cli.ts";
import { builtImage } from "../helpers/build.ts";
import { PROJECT_ROOT } from "../helpers/tmp.ts";

// bronze image pxe: a network boot directory, booted over QEMU's TFTP by OVMF's own PXE (the UKI) and by
// the NIC's iPXE ROM (boot.ipxe, then the kernel and initramfs).

const OUT = join(PROJECT_ROOT, "_out", "minimal");
let dir = "";
let pxe = "";
let cmdline = "";

before(async () => {
  await builtImage("minimal");
  cmdline = (JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as { cmdline: string }).cmdline;
  dir = await mkdtemp(join(tmpdir(), "bronze-pxe-test-"));
  pxe = join(dir, "pxe");
  const made = await bronze(["image", "pxe", "--from", join(OUT, "installer"), "--out", pxe]);
  assert.equal(made.exitCode, 0, String(made.all));
  assert.match(String(made.stdout), /bootfile uki\.efi \(UEFI\) or boot\.ipxe \(iPXE\)/);
}, { timeout: 30 * 60_000 });

after(() => rm(dir, { recursive: true, force: true }));

test("the pxe directory holds the build's UKI, kernel, initramfs and command line, and an iPXE script that boots them; the same bytes from the installer's tar", async () => {
  assert.deepEqual((await readdir(pxe)).sort(), ["boot.ipxe", "cmdline", "initramfs.cpio.zst", "uki.efi", "vmlinuz"]);
  for (const name of ["uki.efi", "vmlinuz", "initramfs.cpio.zst"]) assert.deepEqual(await readFile(join(pxe, name)), await readFile(join(OUT, name)), name);
  assert.equal(await readFile(join(pxe, "cmdline"), "utf8"), `${cmdline}\n`);
  const script = (await readFile(join(pxe, "boot.ipxe"), "utf8")).split("\n");
  assert.equal(script[0], "#!ipxe");
  assert.ok(script.includes(`kernel vmlinuz initrd=initramfs.cpio.zst ${cmdline}`), script.join("\n"));
  assert.ok(script.includes("initrd initramfs.cpio.zst") && script.includes("boot"));
  const again = join(dir, "again");
  const made = await bronze(["image", "pxe", "--from", join(OUT, "installer.oci.tar"), "--out", again], { TZ: "Asia/Tokyo" });
  assert.equal(made.exitCode, 0, String(made.all));
  for (const name of await readdir(pxe)) assert.deepEqual(await readFile(join(again, name)), await readFile(join(pxe, name)), name);
});

test("over TFTP, OVMF's PXE boots uki.efi and iPXE's boot.ipxe boots the kernel and initramfs, each to init's ready line", async () => {
  const uefi = await boot({ kind: "network", root: pxe, bootfile: "uki.efi", via: "uefi" }, BOOT_DEFAULTS);
  assert.equal(uefi.ready.root, "ro");
  assert.ok(uefi.console.some((line) => line.includes("PXEv4")), "the firmware's PXE loaded it");
  const ipxe = await bronze(["boot", pxe, "--ipxe"]);
  assert.equal(ipxe.exitCode, 0, String(ipxe.all));
  // iPXE redraws its progress line, and the serial console can lose characters of the URL in it
  assert.match(String(ipxe.stdout), /Filename: boot\.ipxe\n/);
  assert.match(String(ipxe.stdout), /ipxe : \d+ bytes \[script\]/);
  assert.match(String(ipxe.stdout), /EFI stub: Loaded initrd from command line option/);
  assert.match(String(ipxe.stdout), /bronze: boot ok in [\d.]+ s: root=ro/);
});

test("boot --ipxe of a directory that is no pxe directory is a usage error naming the fix", async () => {
  const result = await bronze(["boot", dir, "--ipxe"]);
  assert.equal(result.exitCode, 2, String(result.all));
  assert.match(String(result.stderr), /--ipxe: .* holds no boot\.ipxe; give a directory written by bronze image pxe/);
});
