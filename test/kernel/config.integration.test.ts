import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { createContext } from "../../src/pipeline/context.ts";
import { InputError } from "../../src/core/errors.ts";
import { resolveKernelConfig } from "../../src/kernel/build.ts";
import { parseDotConfig } from "../../src/kernel/config.ts";
import { loadKernelSource } from "../../src/kernel/source.ts";
import { kernelConfigGate } from "../../src/harden/build-gate.ts";
import { loadExceptions } from "../../src/harden/gate.ts";
import { bronze } from "../helpers/cli.ts";
import { profileWithExtraConfig, startBuild } from "../helpers/build.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// Config resolution on the real kernel source (allnoconfig + fragments), without compiling.

/** The hardening gate as a build runs it before compiling (kconfig checks, the project's exceptions). */
async function assertGatePasses(kernelProfile: string, dotConfig: string): Promise<void> {
  const exceptions = await loadExceptions(join(PROJECT_ROOT, "kernel", "hardening", "exceptions.yaml"));
  kernelConfigGate({ arch: "X86_64", kernelProfile, decisions: ["defconfig", "kspp"], exceptions })(dotConfig);
}

test("bronze kernel config prints the resolved default profile: a VM and container-host kernel", async () => {
  const result = await bronze(["kernel", "config", "--profile", "default"]);
  assert.equal(result.exitCode, 0, String(result.stderr));
  const values = parseDotConfig(String(result.stdout));
  for (const option of ["VIRTIO_NET", "BLK_DEV_NVME", "SATA_AHCI", "XEN_BLKDEV_FRONTEND", "HYPERV_NET", "VMXNET3", "ENA_ETHERNET", "CGROUPS", "MEMCG", "USER_NS", "SECCOMP_FILTER", "BPF_SYSCALL", "NF_TABLES", "BRIDGE", "VETH", "VXLAN", "WIREGUARD", "9P_FS", "VIRTIO_FS", "OVERLAY_FS", "EFI_STUB", "FB_EFI", "MODULE_SIG_FORCE"]) {
    assert.equal(values.get(`CONFIG_${option}`), "y", option);
  }
  await assertGatePasses("default", String(result.stdout));
});

test("a build whose kernel config weakens a gated hardening option stops before compiling, listing the failing checks", async () => {
  const build = await startBuild(await profileWithExtraConfig("weak", "# CONFIG_STACKPROTECTOR_STRONG is not set\n# CONFIG_SLAB_FREELIST_HARDENED is not set\n"));
  assert.equal(build.exitCode, 1, String(build.all));
  assert.match(String(build.all), /kernel hardening gate failed for the kernel config \(kernel profile minimal, X86_64, decisions defconfig, kspp\)/);
  assert.match(String(build.all), /CONFIG_STACKPROTECTOR_STRONG \(kconfig, defconfig\/self_protection\) wants y: FAIL: "is not set"/);
  assert.match(String(build.all), /CONFIG_SLAB_FREELIST_HARDENED \(kconfig, kspp\/self_protection\) wants y: FAIL: "is not set"/);
  assert.match(String(build.all), /fix: set the option in kernel\/config/);
  assert.doesNotMatch(String(build.all), /vmlinuz|modules_install/, "nothing was compiled");
});

test("an option whose dependency is off fails, naming the fragment line and the symbols that are off", async () => {
  const dir = await tempDir();
  const fragment = join(dir, "extra.config");
  await writeFile(fragment, "# 9p needs networking and network filesystems, which minimal lacks\nCONFIG_9P_FS=y\nCONFIG_NO_SUCH_THING=y\n");
  const ctx = createContext(PROJECT_ROOT, 0);
  const source = await loadKernelSource(join(PROJECT_ROOT, "kernel"));
  await assert.rejects(resolveKernelConfig(source, { arch: "x86_64", profile: "minimal", extraConfig: [fragment], modules: [] }, ctx), (e: unknown) => {
    assert.ok(e instanceof InputError);
    assert.match(e.message, /extra\.config:2: CONFIG_9P_FS=y but the resolved config has it unset \(unmet dependency: needs CONFIG_NETWORK_FILESYSTEMS, CONFIG_NET_9P, which are off; see fs\/9p\/Kconfig:\d+\)/);
    assert.match(e.message, /extra\.config:3: CONFIG_NO_SUCH_THING=y but the resolved config has it unset \(no such option in this kernel\)/);
    return true;
  });
});

test("the metal profile extends default with broad hardware, built in", async () => {
  const result = await bronze(["kernel", "config", "--profile", "metal"]);
  assert.equal(result.exitCode, 0, String(result.stderr));
  const values = parseDotConfig(String(result.stdout));
  // from default (extended), then metal's own
  await assertGatePasses("metal", String(result.stdout));
  for (const option of ["VIRTIO_NET", "CGROUPS", "NF_TABLES", "MEGARAID_SAS", "SCSI_MPT3SAS", "IXGBE", "I40E", "ICE", "MLX5_CORE_EN", "TIGON3", "R8169", "USB_XHCI_HCD", "USB_STORAGE", "USB_HID", "IPMI_SI", "TCG_TPM", "MD_RAID1", "DM_CRYPT", "INTEL_IOMMU", "AMD_IOMMU"]) {
    assert.equal(values.get(`CONFIG_${option}`), "y", option);
  }
});
