import assert from "node:assert/strict";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS, type BootResult } from "../../src/boot/qemu.ts";
import type { Arch } from "../../src/core/arch.ts";
import { writeCpio } from "../../src/initramfs/cpio.ts";
import { MKSQUASHFS_FLAGS } from "../../src/rootfs/build.ts";
import { makeSigningKey, signModule, stripSignature } from "./modsign.ts";
import { tempDir } from "./tmp.ts";

export interface BuiltImage {
  dir: string;
  manifest: { sourceDateEpoch: number; cmdline: string; kernel: { release: string } };
  /** the image's rootfs, unpacked */
  root: string;
}

/** Reads a build output directory (_out/<profile>) and unpacks its rootfs into `work`. */
export async function unpackImage(outDir: string, work: string): Promise<BuiltImage> {
  const manifest = JSON.parse(await readFile(join(outDir, "manifest.json"), "utf8")) as BuiltImage["manifest"];
  const root = join(work, "root");
  await execa("unsquashfs", ["-q", "-d", root, join(outDir, "rootfs.sqsh")]);
  return { dir: outDir, manifest, root };
}

/**
 * Boots the image's kernel directly (in QEMU's machine for `arch`, default the host's) with its rootfs plus `extraFiles`, asking
 * init to load `modules` in order and power off; returns init's module report.
 */
export async function bootLoadingModules(
  image: BuiltImage,
  work: string,
  extraFiles: readonly { path: string; data: Buffer }[],
  modules: readonly string[],
  arch?: Arch,
): Promise<{ report: string[]; result: BootResult }> {
  for (const file of extraFiles) {
    await mkdir(dirname(join(image.root, file.path)), { recursive: true });
    await writeFile(join(image.root, file.path), file.data);
  }
  const sqsh = join(work, "rootfs-with-modules.sqsh");
  await execa("mksquashfs", [image.root, sqsh, ...MKSQUASHFS_FLAGS]);
  const cpio = writeCpio(
    [
      { type: "file", path: "init", mode: 0o755, data: await readFile(join(image.root, "usr/sbin/init")) },
      { type: "file", path: "rootfs.sqsh", mode: 0o644, data: await readFile(sqsh) },
    ],
    image.manifest.sourceDateEpoch,
  );
  await writeFile(join(work, "initramfs.cpio"), cpio);
  await rm(sqsh);
  const result = await boot(
    {
      kind: "kernel",
      kernel: join(image.dir, "vmlinuz"),
      initramfs: join(work, "initramfs.cpio"),
      cmdline: `${image.manifest.cmdline} bronze.modules=${modules.join(",")} bronze.poweroff=1`,
    },
    { ...BOOT_DEFAULTS, expectPowerOff: true, ...(arch ? { arch } : {}) },
  );
  return { report: result.console.filter((l) => l.startsWith("bronze: module ")), result };
}

/**
 * The built image's kernel, booted, loads a module signed at build time (in-tree and out-of-tree) and
 * refuses the same module unsigned or signed by another key: the image's rootfs with the two bad copies added.
 */
export async function assertModuleEnforcement(outDir: string, arch?: Arch): Promise<void> {
  const work = await tempDir();
  const image = await unpackImage(outDir, work);
  const release = image.manifest.kernel.release;
  const signedPath = `/usr/lib/modules/${release}/kernel/lib/crc-ccitt.ko`;
  const signed = await readFile(join(image.root, signedPath));
  const unsigned = stripSignature(signed);
  assert.ok(unsigned.length < signed.length, "the shipped module carries a signature");
  const foreignKey = await makeSigningKey(work, "foreign");
  const outOfTree = `/usr/lib/modules/${release}/extra/bronze_hello.ko`;
  const { report, result } = await bootLoadingModules(
    image,
    work,
    [
      { path: "usr/lib/bronze-test/unsigned.ko", data: unsigned },
      { path: "usr/lib/bronze-test/foreign.ko", data: await signModule(unsigned, foreignKey, work) },
    ],
    ["/usr/lib/bronze-test/unsigned.ko", "/usr/lib/bronze-test/foreign.ko", signedPath, outOfTree],
    arch,
  );
  // with enforcement, the kernel answers EKEYREJECTED to both, and logs why
  assert.deepEqual(report, [
    "bronze: module /usr/lib/bronze-test/unsigned.ko refused: Key was rejected by service",
    "bronze: module /usr/lib/bronze-test/foreign.ko refused: Key was rejected by service",
    `bronze: module ${signedPath} loaded`,
    `bronze: module ${outOfTree} loaded`,
  ]);
  assert.ok(result.console.some((l) => l.includes("bronze_hello: loaded")), "the out-of-tree module ran its init");
  const reasons = result.console.filter((l) => /Loading of .* is rejected/.test(l));
  assert.deepEqual(reasons, ["Loading of unsigned module is rejected", "Loading of module with unavailable key is rejected"]);
}
