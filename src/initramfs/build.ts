import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BuildContext } from "../build/context.ts";
import { run } from "../core/exec.ts";
import { inputKey, recipeDigest } from "../core/hash.ts";
import { toolVersions } from "../core/tools.ts";
import type { RootfsArtifact } from "../rootfs/build.ts";
import { writeCpio } from "./cpio.ts";

export interface InitramfsArtifact {
  kind: "initramfs";
  key: string;
  /** zstd-compressed newc cpio holding /init and /rootfs.sqsh */
  image: string;
}

export const ZSTD_LEVEL = 18;

/** The initramfs: exactly /init (bronze's init, stage 1) and /rootfs.sqsh. */
export async function buildInitramfs(
  init: string,
  rootfs: RootfsArtifact,
  ctx: BuildContext,
): Promise<InitramfsArtifact> {
  const initBytes = await readFile(init);
  const inputs = {
    step: "initramfs",
    recipe: await recipeDigest(import.meta.url, new URL("./cpio.ts", import.meta.url).href),
    init: inputKey({ init: initBytes.toString("base64") }),
    rootfs: rootfs.key,
    epoch: ctx.epoch,
    zstdLevel: ZSTD_LEVEL,
    tools: await toolVersions(["zstd"]),
  };
  const key = inputKey(inputs);
  const cached = await ctx.store.lookup(key);
  if (cached) return { kind: "initramfs", key, image: join(cached.dir, "initramfs.cpio.zst") };

  ctx.ran.push("initramfs");
  const entry = await ctx.store.put(key, "initramfs", inputs, async (outDir) => {
    const cpio = writeCpio(
      [
        { type: "file", path: "init", mode: 0o755, data: initBytes },
        { type: "file", path: "rootfs.sqsh", mode: 0o644, data: await readFile(rootfs.image) },
      ],
      ctx.epoch,
    );
    const plain = join(outDir, "initramfs.cpio");
    await writeFile(plain, cpio);
    await run("zstd", ["-q", `-${ZSTD_LEVEL}`, "--rm", plain, "-o", join(outDir, "initramfs.cpio.zst")], {
      logFile: join(ctx.logDir, "initramfs.log"),
    });
    return {};
  });
  return { kind: "initramfs", key, image: join(entry.dir, "initramfs.cpio.zst") };
}
