import assert from "node:assert/strict";
import { test } from "node:test";
import { execa } from "execa";
import { ARCHES, archNamed, crossPrefix, HOST_ARCH } from "../../src/core/arch.ts";

test("each architecture has its own name in every vocabulary, and the host's own toolchain has no prefix", () => {
  for (const field of ["name", "gnuTriplet", "kernel", "oci", "hardening", "efiBootFile", "serialConsole", "qemu"] as const) {
    const names = ARCHES.map((a) => a[field]);
    assert.equal(new Set(names).size, names.length, `${field}: ${names.join(", ")}`);
  }
  assert.equal(crossPrefix(HOST_ARCH), "");
  assert.equal(crossPrefix(archNamed("aarch64")), "aarch64-linux-gnu-");
  assert.throws(() => archNamed("riscv64"), /no architecture named riscv64; bronze builds x86_64, aarch64/);
});

test("another architecture's systemd-boot-efi is pinned at the version of the host's, so both arches boot the same stub", async () => {
  const installed = (await execa("dpkg-query", ["-W", "-f=${Version}", "systemd-boot-efi"])).stdout;
  for (const arch of ARCHES) {
    if (arch.efi.kind === "host") continue;
    assert.equal(arch.efi.package, "systemd-boot-efi");
    assert.equal(arch.efi.version, installed, `${arch.name}'s pin (src/core/arch.ts) is ${arch.efi.version}, the host has ${installed}: pin the same version and its sha256`);
    assert.match(arch.efi.sha256, /^[0-9a-f]{64}$/);
  }
});
