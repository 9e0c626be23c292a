// arm64 beside amd64 in make bench: a cold build of the minimal image for each architecture in the same run
// (fresh caches; the fetched sources shared, so that no download is timed), and power-on to the ready line
// of each UKI under TCG.
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS } from "../src/boot/qemu.ts";
import { archNamed, DEFAULT_ARCH } from "../src/core/arch.ts";
import { outputDirName } from "../src/profile/profile.ts";
import { pair, stats, timed, type Figure } from "./harness.ts";

const ARM = archNamed("aarch64");

async function coldBuild(root: string, scratch: string, arch: string): Promise<number> {
  const cache = join(scratch, `arch-cache-${arch}`);
  await mkdir(cache, { recursive: true });
  await execa("cp", ["-al", join(root, ".cache", "bronze", "sources"), join(cache, "sources")]);
  const ms = await timed(() => execa(join(root, "bin", "bronze"), ["build", "--profile", "minimal", "--arch", arch, "--cache-dir", cache], { cwd: root, env: { CI: "true" } }));
  await rm(cache, { recursive: true, force: true });
  return ms;
}

export async function archFigures(root: string, scratch: string): Promise<Figure[]> {
  // one cold build each: minutes apiece, and each the kernel compile on both cores
  const amd = await coldBuild(root, scratch, DEFAULT_ARCH.name);
  const arm = await coldBuild(root, scratch, ARM.name);
  const one = (v: number) => stats([v]);
  const uki = (arch: string) => join(root, "_out", outputDirName({ name: "minimal", arch }), "uki.efi");
  const readyAfter = async (arch: typeof ARM) => (await boot({ kind: "uki", uki: uki(arch.name) }, { ...BOOT_DEFAULTS, arch })).readyAfterMs;
  return [
    { name: "cold build of minimal (fresh cache, 1 run each): arm64 cross-built vs amd64", unit: "ms", value: one(arm), baseline: one(amd), ratio: one(arm / amd), goal: "report" },
    await pair("power-on to ready under TCG: the arm64 minimal UKI (qemu-system-aarch64 virt, AAVMF) vs the amd64 one (q35, OVMF)", "report", () => readyAfter(DEFAULT_ARCH), () => readyAfter(ARM), true),
  ];
}
