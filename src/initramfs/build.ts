import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BuildContext } from "../core/context.ts";
import { run } from "../core/exec.ts";
import { inputKey, recipeDigest } from "../core/hash.ts";
import { toolVersions } from "../core/tools.ts";
import type { RootfsArtifact } from "../rootfs/build.ts";
import { writeCpio } from "./cpio.ts";
import { cachedStep } from "../core/step.ts";
import type { StoreEntry } from "../core/store.ts";
import { FILES } from "../core/outputs.ts";

export interface InitramfsArtifact {
  kind: "initramfs";
  key: string;
  /** zstd-compressed newc cpio holding /init and /rootfs.sqsh */
  image: string;
}

export const ZSTD_LEVEL = 18;
/** SquashFS layers are compressed already: a fast level */
const LAYERS_ZSTD_LEVEL = 3;

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
  const produce = async (outDir: string) => {
    const cpio = writeCpio(
      [
        { type: "file", path: "init", mode: 0o755, data: initBytes },
        { type: "file", path: FILES.rootfs, mode: 0o644, data: await readFile(rootfs.image) },
      ],
      ctx.epoch,
    );
    const plain = join(outDir, "initramfs.cpio");
    await writeFile(plain, cpio);
    await run("zstd", ["-q", `-${ZSTD_LEVEL}`, "--rm", plain, "-o", join(outDir, FILES.initramfs)], {
      logFile: join(ctx.logDir, "initramfs.log"),
    });
  };
  return cachedStep(ctx, { name: "initramfs", inputs, produce, artifact: initramfsOf });
}

/** The initramfs of a cache entry: its initramfs.cpio.zst. */
function initramfsOf(entry: StoreEntry): InitramfsArtifact {
  return { kind: "initramfs", key: entry.key, image: join(entry.dir, FILES.initramfs) };
}

/** What an extension layer contributes to the initramfs: /extensions/<name>.sqsh. */
export interface InitramfsLayer {
  name: string;
  key: string;
  image: string;
}

/**
 * The base initramfs with the layers appended as one more zstd-compressed cpio (the kernel
 * unpacks concatenated archives in order): the base's bytes stay as they are.
 */
export async function appendLayers(base: InitramfsArtifact, layers: readonly InitramfsLayer[], ctx: BuildContext): Promise<InitramfsArtifact> {
  const inputs = {
    step: "initramfs layers",
    recipe: await recipeDigest(import.meta.url, new URL("./cpio.ts", import.meta.url).href),
    base: base.key,
    layers: layers.map((l) => [l.name, l.key]),
    epoch: ctx.epoch,
    zstdLevel: LAYERS_ZSTD_LEVEL,
    tools: await toolVersions(["zstd"]),
  };
  const produce = async (outDir: string) => {
    const files = await Promise.all(layers.map(async (l) => ({ type: "file" as const, path: `extensions/${l.name}.sqsh`, mode: 0o644, data: await readFile(l.image) })));
    const plain = join(outDir, "layers.cpio");
    await writeFile(plain, writeCpio([{ type: "dir", path: "extensions", mode: 0o755 }, ...files], ctx.epoch));
    await run("zstd", ["-q", `-${LAYERS_ZSTD_LEVEL}`, "--rm", plain, "-o", join(outDir, "layers.cpio.zst")], { logFile: join(ctx.logDir, "initramfs.log") });
    await writeFile(join(outDir, FILES.initramfs), Buffer.concat([await readFile(base.image), await readFile(join(outDir, "layers.cpio.zst"))]));
    await rm(join(outDir, "layers.cpio.zst"));
  };
  return cachedStep(ctx, { name: "initramfs layers", inputs, produce, artifact: initramfsOf });
}
