import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { createContext } from "../../src/build/context.ts";
import { InputError } from "../../src/core/errors.ts";
import { resolveKernelConfig } from "../../src/kernel/build.ts";
import { parseDotConfig } from "../../src/kernel/config.ts";
import { loadKernelSource } from "../../src/kernel/source.ts";
import { bronze } from "../helpers/cli.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// Config resolution on the real kernel source (allnoconfig + fragments), without compiling.

test("bronze kernel config prints the resolved default profile: a VM and container-host kernel", async () => {
  const result = await bronze(["kernel", "config", "--profile", "default"]);
  assert.equal(result.exitCode, 0, String(result.stderr));
  const values = parseDotConfig(String(result.stdout));
  for (const option of ["VIRTIO_NET", "BLK_DEV_NVME", "SATA_AHCI", "XEN_BLKDEV_FRONTEND", "HYPERV_NET", "VMXNET3", "ENA_ETHERNET", "CGROUPS", "MEMCG", "USER_NS", "SECCOMP_FILTER", "BPF_SYSCALL", "NF_TABLES", "BRIDGE", "VETH", "VXLAN", "WIREGUARD", "9P_FS", "VIRTIO_FS", "OVERLAY_FS", "EFI_STUB", "FB_EFI", "MODULE_SIG_FORCE"]) {
    assert.equal(values.get(`CONFIG_${option}`), "y", option);
  }
});

test("an option whose dependency is off fails, naming the fragment line and the symbols that are off", async () => {
  const dir = await tempDir();
  const fragment = join(dir, "extra.config");
  await writeFile(fragment, "# 9p needs networking and network filesystems, which minimal lacks\nCONFIG_9P_FS=y\nCONFIG_NO_SUCH_THING=y\n");
  const ctx = createContext(PROJECT_ROOT, 0);
  const source = await loadKernelSource(join(PROJECT_ROOT, "kernel"));
  await assert.rejects(resolveKernelConfig(source, { arch: "x86_64", profile: "minimal", extraConfig: [fragment], modules: [] }, ctx), (e: unknown) => {
    assert.ok(e instanceof InputError);
    assert.match(e.message, /extra\.config:2: CONFIG_9P_FS=y but the resolved config has it unset \(unmet dependency: needs CONFIG_NETWORK_FILESYSTEMS, CONFIG_INET, CONFIG_NET_9P, which are off; see fs\/9p\/Kconfig:\d+\)/);
    assert.match(e.message, /extra\.config:3: CONFIG_NO_SUCH_THING=y but the resolved config has it unset \(no such option in this kernel\)/);
    return true;
  });
});

test("the metal profile extends default with broad hardware, built in", async () => {
  const result = await bronze(["kernel", "config", "--profile", "metal"]);
  assert.equal(result.exitCode, 0, String(result.stderr));
  const values = parseDotConfig(String(result.stdout));
  // from default (extended), then metal's own
  for (const option of ["VIRTIO_NET", "CGROUPS", "NF_TABLES", "MEGARAID_SAS", "SCSI_MPT3SAS", "IXGBE", "I40E", "ICE", "MLX5_CORE_EN", "TIGON3", "R8169", "USB_XHCI_HCD", "USB_STORAGE", "USB_HID", "IPMI_SI", "TCG_TPM", "MD_RAID1", "DM_CRYPT", "INTEL_IOMMU", "AMD_IOMMU"]) {
    assert.equal(values.get(`CONFIG_${option}`), "y", option);
  }
});
