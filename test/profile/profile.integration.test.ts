import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { access, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, test } from "node:test";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS } from "../../src/boot/qemu.ts";
import { loadProfile } from "../../src/profile/profile.ts";
import { readUkiSections } from "../../src/uki/uki.ts";
import { startBuild } from "../helpers/build.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

const OUT = join(PROJECT_ROOT, "_out", "edge");
after(() => rm(OUT, { recursive: true, force: true }));

test("a profile on the minimal base with its own kernel arguments and outputs; a change of arguments rebuilds only the UKI; the disk boots with them", { timeout: 20 * 60_000 }, async () => {
  const dir = await tempDir();
  const file = join(dir, "edge.yaml");
  const write = (args: string) => writeFile(file, `name: edge\ndescription: minimal with a marker argument\nbase: minimal\nkernelArgs: [${args}]\noutputs: [uki, installer, disk, iso, pxe]\n`);
  await write("bronze.edge=0");
  // the base first (built here on a fresh machine, else from the cache), then the custom profile on it
  const base = await startBuild("minimal");
  assert.equal(base.exitCode, 0, base.all);
  const first = await startBuild(file);
  assert.equal(first.exitCode, 0, first.all);
  // packages and kernel are the base's (from the cache); the rootfs names this image (os-release, SBOM)
  assert.doesNotMatch(first.all, /ran: .*(package|kernel)/);
  // a value no earlier run used, so the new UKI cannot come from the cache
  const marker = `bronze.edge=${randomBytes(4).toString("hex")}`;
  await write(marker);
  const profile = await loadProfile(file);
  const built = await startBuild(file);
  assert.equal(built.exitCode, 0, built.all);
  assert.match(built.all, /2 build step\(s\) ran: uki, installer\n/);

  const manifest = JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as { profileId: string; base: string; outputs: string[]; cmdline: string; artifacts: { name: string }[] };
  assert.equal(manifest.profileId, profile.id);
  assert.equal(manifest.base, "minimal");
  assert.deepEqual(manifest.outputs, ["uki", "installer", "disk", "iso", "pxe"]);
  assert.ok(manifest.cmdline.endsWith(` ${marker}`), manifest.cmdline);
  const names = manifest.artifacts.map((a) => a.name);
  for (const name of ["uki.efi", "installer.oci.tar", "disk.raw", "image.iso", "rootfs.sqsh"]) assert.ok(names.includes(name), `${name} in ${names.join(", ")}`);
  for (const name of ["vmlinuz", "initramfs.cpio.zst"]) {
    assert.ok(!names.includes(name), `${name} is not an output of this profile`);
    await assert.rejects(access(join(OUT, name)));
  }
  const cmdline = Buffer.from(readUkiSections(await readFile(join(OUT, "uki.efi"))).find((s) => s.name === ".cmdline")!.data).toString("utf8");
  assert.ok(cmdline.includes(marker), cmdline);

  // an independent reader of the disk, then a boot of a copy of it
  const table = JSON.parse((await execa("sfdisk", ["--json", join(OUT, "disk.raw")])).stdout) as { partitiontable: { label: string; partitions: { name: string }[] } };
  assert.equal(table.partitiontable.label, "gpt");
  assert.deepEqual(table.partitiontable.partitions.map((p) => p.name), ["ESP", "var"]);
  assert.match((await execa("isoinfo", ["-d", "-i", join(OUT, "image.iso")])).stdout, /Volume id: BRONZE_EDGE_/);
  assert.match(await readFile(join(OUT, "pxe", "boot.ipxe"), "utf8"), new RegExp(`^kernel vmlinuz initrd=initramfs\\.cpio\\.zst .* ${marker}$`, "m"));
  assert.deepEqual(await readFile(join(OUT, "pxe", "uki.efi")), await readFile(join(OUT, "uki.efi")));
  const disk = join(dir, "disk.raw");
  await execa("cp", ["--sparse=always", join(OUT, "disk.raw"), disk]);
  const result = await boot({ kind: "disk", disk }, { ...BOOT_DEFAULTS, timeoutMs: 240_000 });
  assert.ok(result.console.some((line) => line.includes("Kernel command line: ") && line.includes(marker)), result.console.slice(-30).join("\n"));
  assert.equal(result.ready.root, "ro");
});
