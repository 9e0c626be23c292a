import assert from "node:assert/strict";
import { test } from "node:test";
import { ARCHES, ARCH_NAMES, archNamed, DEFAULT_ARCH } from "../../src/core/arch.ts";
import { BOOT_MEDIA, diskFormatOf, FILES, isBootMedium, isPublished, mediumFile, OUTPUTS } from "../../src/core/outputs.ts";

test("each output kind publishes its own files; the manifest, SBOMs and rootfs always", () => {
  assert.deepEqual(OUTPUTS, ["uki", "kernel-initramfs", "installer", "disk", "raw.zst", "raw.xz", "qcow2", "vhd", "gcp", "ova", "iso", "pxe"]);
  assert.deepEqual(OUTPUTS.filter(isBootMedium), [...BOOT_MEDIA]);
  assert.deepEqual(BOOT_MEDIA, ["disk", "raw.zst", "raw.xz", "qcow2", "vhd", "gcp", "ova", "iso", "pxe"]);
  assert.deepEqual(BOOT_MEDIA.map(diskFormatOf), ["raw", "raw.zst", "raw.xz", "qcow2", "vhd", "gcp", "ova", undefined, undefined]);
  assert.deepEqual(BOOT_MEDIA.map(mediumFile), [FILES.disk, FILES.diskZst, FILES.diskXz, FILES.qcow2, FILES.vhd, FILES.gcp, FILES.ova, FILES.iso, FILES.pxe]);
  const names = [FILES.uki, FILES.signedUki, FILES.kernel, FILES.initramfs, FILES.installerTar, `${FILES.installerLayout}/index.json`, FILES.disk, FILES.diskZst, FILES.diskXz, FILES.qcow2, FILES.vhd, FILES.gcp, FILES.ova, FILES.iso, `${FILES.pxe}/boot.ipxe`, FILES.manifest, FILES.rootfs, "minimal.spdx.json"];
  const published = (outputs: Parameters<typeof isPublished>[0]) => names.filter((n) => isPublished(outputs, n));
  assert.deepEqual(published(["uki"]), [FILES.uki, FILES.signedUki, FILES.manifest, FILES.rootfs, "minimal.spdx.json"]);
  assert.deepEqual(published(["installer", "disk"]), [FILES.installerTar, `${FILES.installerLayout}/index.json`, FILES.disk, FILES.manifest, FILES.rootfs, "minimal.spdx.json"]);
  assert.deepEqual(published(["installer", "iso"]), [FILES.installerTar, `${FILES.installerLayout}/index.json`, FILES.iso, FILES.manifest, FILES.rootfs, "minimal.spdx.json"]);
  assert.deepEqual(published([...OUTPUTS]), names);
});

test("an architecture is named once: every vocabulary's name of it from one row", () => {
  assert.deepEqual(ARCH_NAMES, ARCHES.map((a) => a.name));
  const x86 = archNamed("x86_64");
  assert.equal(x86, DEFAULT_ARCH);
  assert.deepEqual([x86.kernel, x86.oci, x86.hardening, x86.efiBootFile, x86.qemu], ["x86", "amd64", "X86_64", "BOOTX64.EFI", "qemu-system-x86_64"]);
  assert.throws(() => archNamed("sparc64"), /no architecture named sparc64; bronze builds x86_64/);
});
