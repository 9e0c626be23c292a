import assert from "node:assert/strict";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS } from "../../src/boot/qemu.ts";
import { writeCpio } from "../../src/initramfs/cpio.ts";
import { MKSQUASHFS_FLAGS } from "../../src/rootfs/build.ts";
import { makeSigningKey, signModule, stripSignature } from "../helpers/modsign.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// Runtime enforcement: the built kernel, booted, must load a module signed at
// build time and refuse the same module unsigned or signed by another key.
// The image is the built minimal image with the two bad copies added.
const OUT = join(PROJECT_ROOT, "_out", "minimal");

test("the kernel loads modules signed at build (in-tree and out-of-tree) and refuses an unsigned and a foreign-signed one", async () => {
  const manifest = JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as { sourceDateEpoch: number; cmdline: string; kernel: { release: string } };
  const work = await tempDir();
  const root = join(work, "root");
  await execa("unsquashfs", ["-q", "-d", root, join(OUT, "rootfs.sqsh")]);

  const signedPath = `/usr/lib/modules/${manifest.kernel.release}/kernel/lib/crc-ccitt.ko`;
  const signed = await readFile(join(root, signedPath));
  const unsigned = stripSignature(signed);
  assert.ok(unsigned.length < signed.length, "the shipped module carries a signature");
  const foreignKey = await makeSigningKey(work, "foreign");
  await mkdir(join(root, "usr/lib/bronze-test"), { recursive: true });
  await writeFile(join(root, "usr/lib/bronze-test/unsigned.ko"), unsigned);
  await writeFile(join(root, "usr/lib/bronze-test/foreign.ko"), await signModule(unsigned, foreignKey, work));

  await execa("mksquashfs", [root, join(work, "rootfs.sqsh"), ...MKSQUASHFS_FLAGS]);
  const cpio = writeCpio(
    [
      { type: "file", path: "init", mode: 0o755, data: await readFile(join(root, "usr/sbin/init")) },
      { type: "file", path: "rootfs.sqsh", mode: 0o644, data: await readFile(join(work, "rootfs.sqsh")) },
    ],
    manifest.sourceDateEpoch,
  );
  await writeFile(join(work, "initramfs.cpio"), cpio);
  await rm(root, { recursive: true, force: true });

  const outOfTree = `/usr/lib/modules/${manifest.kernel.release}/extra/bronze_hello.ko`;
  const modules = ["/usr/lib/bronze-test/unsigned.ko", "/usr/lib/bronze-test/foreign.ko", signedPath, outOfTree];
  const result = await boot(
    {
      kind: "kernel",
      kernel: join(OUT, "vmlinuz"),
      initramfs: join(work, "initramfs.cpio"),
      cmdline: `${manifest.cmdline} bronze.modules=${modules.join(",")} bronze.poweroff=1`,
    },
    { ...BOOT_DEFAULTS, expectPowerOff: true },
  );
  const report = result.console.filter((l) => l.startsWith("bronze: module "));
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
});
