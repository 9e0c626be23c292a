// The image's layers over its base rootfs: one SquashFS per extension, and the module indexes when extensions add modules.
import { cp, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ownedWorkDir } from "../core/ownership.ts";
import type { BuildContext } from "../core/context.ts";
import { run } from "../core/exec.ts";
import { recipeDigest } from "../core/hash.ts";
import { cachedStep } from "../core/step.ts";
import { toolVersions } from "../core/tools.ts";
import type { KernelArtifact } from "../kernel/build.ts";
import { entriesDigest, readTree } from "../oci/dir-read.ts";
import { writeEntries } from "../oci/dir-write.ts";
import type { ReadEntry } from "../oci/tar-read.ts";
import { makeSquashfs, ownerDefinitions } from "../rootfs/build.ts";
import type { ResolvedExtension } from "./assemble.ts";
import type { ExtensionContent } from "./policy.ts";
import { isServiceDefinition, parseServiceDefinition, renderServiceFile, SERVICE_FORMAT, SERVICES_DIR } from "./services.ts";

/** A SquashFS layer of the image, stacked over the base rootfs by init. */
export interface LayerArtifact {
  /** its name in the initramfs (/extensions/<name>.sqsh); init stacks layers in name order, the last on top */
  name: string;
  key: string;
  image: string;
}

/** The service files init reads, written from the extension's checked YAML definitions. */
function serviceFiles(content: ExtensionContent): ReadEntry[] {
  return content.entries
    .filter(isServiceDefinition)
    .map((e) => {
      const fileName = e.path.slice(SERVICES_DIR.length);
      const service = parseServiceDefinition(e.path, fileName, (e.data ?? Buffer.alloc(0)).toString("utf8"));
      return { path: `${SERVICES_DIR}${service.name}${SERVICE_FORMAT.suffix}`, type: "file" as const, mode: 0o644, uid: 0, gid: 0, data: renderServiceFile(service) };
    });
}

/** A SquashFS layer of `entries`, cached under `inputs` (what determines the entries): `entries` runs only on a miss. */
async function squashLayer(name: string, step: string, what: Record<string, unknown>, entries: () => Promise<readonly ReadEntry[]>, ctx: BuildContext): Promise<LayerArtifact> {
  const inputs = {
    step,
    recipe: await recipeDigest(import.meta.url, new URL("../oci/dir-write.ts", import.meta.url).href, new URL("./services.ts", import.meta.url).href),
    ...what,
    epoch: ctx.epoch,
    tools: await toolVersions([["mksquashfs", "-version"]]),
  };
  const produce = async (outDir: string, key: string) => {
    const tree = await ownedWorkDir(join(ctx.workDir, "layers"), key.slice(0, 12));
    try {
      const list = await entries();
      await writeEntries(list, tree, step);
      // owners other than root (a container image's files) are kept, as pseudo definitions beside the tree
      const owners = list.some((e) => e.uid !== 0 || e.gid !== 0) ? `${tree}.owners` : undefined;
      if (owners) await writeFile(owners, ownerDefinitions(list));
      await makeSquashfs(tree, join(outDir, "layer.sqsh"), ctx.epoch, join(ctx.logDir, "layers.log"), owners);
    } finally {
      await rm(tree, { recursive: true, force: true });
      await rm(`${tree}.owners`, { force: true });
    }
  };
  return cachedStep(ctx, { name: step, inputs, produce, artifact: ({ key, dir }) => ({ name, key, image: join(dir, "layer.sqsh") }) });
}

/** What an extension's layer holds: its files, and the service files init reads. */
export function layerEntries(ext: ResolvedExtension): ReadEntry[] {
  return [...ext.content.entries, ...serviceFiles(ext.content)].sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** The extension's own layer. */
export function extensionLayer(ext: ResolvedExtension, position: number, ctx: BuildContext): Promise<LayerArtifact> {
  const name = `${String(position + 1).padStart(3, "0")}-${ext.content.manifest.name}`;
  const entries = layerEntries(ext);
  return squashLayer(name, `extension ${ext.content.manifest.name}`, { content: entriesDigest(entries) }, () => Promise.resolve(entries), ctx);
}

/** Layer name of the module dependency data: after every NNN-name, so on top. */
const MODULES_LAYER = "modules-index";

/**
 * When extensions add kernel modules, the module dependency data (modules.dep and the other
 * indexes depmod writes) regenerated over the base's modules and theirs, as a layer on top.
 */
export async function modulesIndexLayer(kernel: KernelArtifact, extensions: readonly ResolvedExtension[], ctx: BuildContext): Promise<LayerArtifact | undefined> {
  const modules = extensions.flatMap((e) => e.content.entries.filter((x) => x.type === "file" && x.path.endsWith(".ko")));
  if (modules.length === 0) return undefined;
  const dir = `usr/lib/modules/${kernel.release}`;
  const what = { kernel: kernel.identity, modules: entriesDigest(modules), depmod: await toolVersions(["depmod"]) };
  return squashLayer(MODULES_LAYER, "modules index", what, async () => {
    const work = join(ctx.workDir, "layers", `depmod-${process.pid}`);
    await rm(work, { recursive: true, force: true });
    try {
      await mkdir(join(work, dir), { recursive: true });
      await cp(join(kernel.modulesRoot, dir), join(work, dir), { recursive: true });
      await writeEntries(modules, work, "extension modules");
      await run("depmod", ["-b", join(work, "usr"), kernel.release], { logFile: join(ctx.logDir, "layers.log") });
      return (await readTree(join(work, dir))).filter((e) => e.type === "file" && e.path.startsWith("modules.")).map((e) => ({ ...e, path: `${dir}/${e.path}`, mode: 0o644 }));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }, ctx);
}
