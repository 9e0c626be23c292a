import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BuildContext } from "../build/context.ts";
import { run } from "../core/exec.ts";
import { inputKey, recipeDigest } from "../core/hash.ts";
import { toolVersions } from "../core/tools.ts";
import type { KernelArtifact } from "../kernel/build.ts";
import type { PackageArtifact } from "../pkgs/build.ts";
import { mergeInto } from "./tree.ts";

export interface RootfsArtifact {
  kind: "rootfs";
  key: string;
  /** rootfs.sqsh: the read-only root filesystem */
  image: string;
}

/** Mount points the init fills at boot; the image itself stays read-only. */
const MOUNT_POINTS = ["dev", "proc", "sys", "run", "tmp", "system", "var", "etc", "usr/bin", "usr/sbin", "usr/lib"];
const USR_LINKS = [
  ["bin", "usr/bin"],
  ["sbin", "usr/sbin"],
  ["lib", "usr/lib"],
] as const;

/** Compression settings: Talos's, for a small image that the kernel reads fast. */
export const MKSQUASHFS_FLAGS = ["-all-root", "-noappend", "-comp", "zstd", "-Xcompression-level", "18", "-no-progress", "-quiet"];

export async function buildRootfs(
  packages: readonly PackageArtifact[],
  kernel: KernelArtifact,
  osReleaseText: string,
  ctx: BuildContext,
): Promise<RootfsArtifact> {
  const inputs = {
    step: "rootfs",
    recipe: await recipeDigest(import.meta.url, new URL("./tree.ts", import.meta.url).href),
    packages: packages.map((p) => [p.name, p.key]),
    kernel: kernel.key,
    osRelease: osReleaseText,
    epoch: ctx.epoch,
    tools: await toolVersions([["mksquashfs", "-version"]]),
  };
  const key = inputKey(inputs);
  const cached = await ctx.store.lookup(key);
  if (cached) return { kind: "rootfs", key, image: join(cached.dir, "rootfs.sqsh") };

  ctx.ran.push("rootfs");
  const logFile = join(ctx.logDir, "rootfs.log");
  const tree = join(ctx.workDir, "rootfs", key.slice(0, 12));
  await rm(tree, { recursive: true, force: true });
  try {
    for (const dir of MOUNT_POINTS) await mkdir(join(tree, dir), { recursive: true });
    for (const [link, target] of USR_LINKS) await symlink(target, join(tree, link));
    const owners = new Map<string, string>();
    for (const pkg of packages) await mergeInto(tree, pkg.dir, pkg.name, owners);
    await mergeInto(tree, kernel.modulesRoot, `kernel ${kernel.profile}`, owners);
    await writeFile(join(tree, "usr/lib/os-release"), osReleaseText);
    await symlink("../usr/lib/os-release", join(tree, "etc/os-release"));

    const entry = await ctx.store.put(key, "rootfs", inputs, async (outDir) => {
      await run("mksquashfs", [tree, join(outDir, "rootfs.sqsh"), ...MKSQUASHFS_FLAGS], {
        env: { SOURCE_DATE_EPOCH: String(ctx.epoch) },
        logFile,
      });
      return {};
    });
    return { kind: "rootfs", key, image: join(entry.dir, "rootfs.sqsh") };
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
}
