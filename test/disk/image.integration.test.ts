import assert from "node:assert/strict";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { tmpdir } from "node:os";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS } from "../../src/boot/qemu.ts";
import { bronze } from "../helpers/cli.ts";
import { PROJECT_ROOT } from "../helpers/tmp.ts";

// bronze image disk: a raw GPT disk (ESP with systemd-boot and the UKI, /var partition) made
// from the installer without loop devices or mounts, read back with sfdisk, sgdisk and mtools,
// and booted by OVMF from the disk alone.

const OUT = join(PROJECT_ROOT, "_out", "minimal");
const ESP_OFFSET = 1 << 20;
let dir = "";
let version = "";

before(async () => {
  const built = await bronze(["build", "--profile", "minimal"]);
  assert.equal(built.exitCode, 0, String(built.all));
  version = (JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as { version: string }).version;
  dir = await mkdtemp(join(tmpdir(), "bronze-disk-test-"));
});

after(() => rm(dir, { recursive: true, force: true }));

async function disk(name: string, from = join(OUT, "installer"), size = "256M") {
  const out = join(dir, name);
  const result = await bronze(["image", "disk", "--from", from, "--out", out, "--size", size]);
  assert.equal(result.exitCode, 0, String(result.all));
  return out;
}

test("the disk has a GPT with an ESP and a /var partition (Discoverable Partitions types, derived GUIDs), the same bytes from the layout and from its tar", async () => {
  const fromDir = await disk("a.raw");
  const fromTar = await disk("b.raw", join(OUT, "installer.oci.tar"));
  assert.deepEqual(await readFile(fromDir), await readFile(fromTar), "reproducible, whatever form the installer comes in");

  const { partitiontable: table } = JSON.parse((await execa("sfdisk", ["--json", fromDir])).stdout) as { partitiontable: { label: string; partitions: { start: number; size: number; type: string; name: string }[] } };
  assert.equal(table.label, "gpt");
  assert.deepEqual(
    table.partitions.map(({ start, size, type, name }) => ({ start, size, type, name })),
    [
      { start: 2048, size: 100 * 2048, type: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", name: "ESP" },
      { start: 101 * 2048, size: 154 * 2048, type: "4D21B016-B534-45C2-A9FB-5C16E091FD2D", name: "var" },
    ],
  );
  const verify = await execa("sgdisk", ["-v", fromDir], { reject: false, all: true });
  assert.match(verify.all ?? "", /No problems found/);
});

test("the ESP is a clean FAT32 holding systemd-boot as the removable-media loader, the UKI under EFI/Linux and loader.conf", async () => {
  const file = await disk("esp.raw");
  const image = `${file}@@${ESP_OFFSET}`;
  const listing = (await execa("mdir", ["-i", image, "-b", "-/", "::/"])).stdout.split("\n").sort();
  assert.deepEqual(listing, ["::/EFI/", "::/EFI/BOOT/", "::/EFI/BOOT/BOOTX64.EFI", "::/EFI/Linux/", `::/EFI/Linux/bronze-${version}.efi`, "::/EFI/systemd/", "::/EFI/systemd/systemd-bootx64.efi", "::/loader/", "::/loader/loader.conf"]);
  const uki = join(dir, "uki-from-esp.efi");
  await execa("mcopy", ["-i", image, `::/EFI/Linux/bronze-${version}.efi`, uki]);
  assert.deepEqual(await readFile(uki), await readFile(join(OUT, "uki.efi")));
  assert.equal((await execa("mtype", ["-i", image, "::/loader/loader.conf"])).stdout, "timeout 0\neditor no");

  const handle = await open(file, "r");
  const esp = Buffer.alloc(100 << 20);
  await handle.read(esp, 0, esp.length, ESP_OFFSET);
  await handle.close();
  await writeFile(join(dir, "esp.img"), esp);
  const fsck = await execa("fsck.vfat", ["-n", join(dir, "esp.img")], { reject: false, all: true });
  assert.equal(fsck.exitCode, 0, fsck.all);
  assert.match(fsck.all ?? "", /ESP|files/);
});

test("OVMF boots the disk alone: systemd-boot starts the UKI; init formats the empty /var partition ext4 on the first boot and keeps its data on the next", async () => {
  const file = await disk("boot.raw");
  const first = await boot({ kind: "disk", disk: file }, BOOT_DEFAULTS);
  assert.deepEqual(first.ready, { root: "ro", var: "rw", varfs: "ext4", boots: "1", version, services: "0" });
  assert.ok(first.console.some((l) => /bronze: var \/dev\/vda2 formatted ext4 \(first boot\)/.test(l)), "formatted by init");
  // seeded by the firmware before init runs: without an entropy source, mkfs waited about a second for one
  const seeded = first.console.findIndex((l) => l.includes("random: crng init done"));
  const initRuns = first.console.findIndex((l) => l.includes("Run /init as init process"));
  assert.ok(seeded >= 0 && initRuns >= 0 && seeded < initRuns, "the kernel's random pool is ready before /init");
  const second = await boot({ kind: "disk", disk: file }, BOOT_DEFAULTS);
  assert.deepEqual(second.ready, { root: "ro", var: "rw", varfs: "ext4", boots: "2", version, services: "0" }, "the count written by the first boot is still there");
  assert.ok(!second.console.some((l) => l.includes("formatted")), "not formatted again");

  // read back on the host with e2fsprogs: a clean ext4 labelled var holding the count
  // (QEMU is stopped at the ready line, like a power cut: the journal is replayed first, on a copy)
  const partition = join(dir, "var.img");
  await execa("dd", [`if=${file}`, `of=${partition}`, "bs=1M", "skip=101", "conv=sparse", "status=none"]);
  const replay = await execa("e2fsck", ["-fy", "-E", "journal_only", partition], { reject: false, all: true });
  assert.ok(replay.exitCode === 0 || replay.exitCode === 1, replay.all);
  const fsck = await execa("e2fsck", ["-fn", partition], { reject: false, all: true });
  assert.equal(fsck.exitCode, 0, fsck.all);
  assert.match((await execa("dumpe2fs", ["-h", partition])).stdout, /Filesystem volume name:\s+var/);
  assert.equal((await execa("debugfs", ["-R", "cat /lib/bronze/boot-count", partition])).stdout.trim(), "2");
});

test("init refuses to format a /var partition that holds data it does not recognise", async () => {
  const file = await disk("foreign.raw");
  const handle = await open(file, "r+");
  await handle.write(Buffer.alloc(4096, 0x5a), 0, 4096, 101 << 20);
  await handle.close();
  await assert.rejects(boot({ kind: "disk", disk: file }, { ...BOOT_DEFAULTS, timeoutMs: 120_000 }), /the var partition holds data that is not ext4; not formatting it/);
});

test("image disk refuses a disk too small, an image that is not an installer and a missing source, exit code 2", async () => {
  const small = await bronze(["image", "disk", "--from", join(OUT, "installer"), "--out", join(dir, "small.raw"), "--size", "100M"]);
  assert.equal(small.exitCode, 2);
  assert.match(String(small.stderr), /a disk needs at least 164 MiB/);
  const size = await bronze(["image", "disk", "--from", join(OUT, "installer"), "--out", join(dir, "x.raw"), "--size", "lots"]);
  assert.equal(size.exitCode, 2);
  assert.match(String(size.stderr), /give a size such as 512M, 2G/);
  const missing = await bronze(["image", "disk", "--from", join(dir, "nothing"), "--out", join(dir, "y.raw")]);
  assert.equal(missing.exitCode, 2);
  assert.match(String(missing.stderr), /no such file or directory; give an OCI image layout/);
  // an OCI image that is not an installer: an empty one made by umoci
  const notInstaller = join(dir, "not-installer");
  await execa("umoci", ["init", "--layout", notInstaller]);
  await execa("umoci", ["new", "--image", `${notInstaller}:latest`]);
  const wrong = await bronze(["image", "disk", "--from", notInstaller, "--out", join(dir, "z.raw")]);
  assert.equal(wrong.exitCode, 2);
  assert.match(String(wrong.stderr), /no usr\/install\/amd64\/manifest.json; give an installer image written by bronze build/);
});
