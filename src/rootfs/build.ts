import { readFileSync, readlinkSync, statSync } from "node:fs";
import { copyFile, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ownedWorkDir } from "../core/ownership.ts";
import type { BuildContext } from "../core/context.ts";
import { run } from "../core/exec.ts";
import { recipeDigest } from "../core/hash.ts";
import { pacer } from "../core/pace.ts";
import { walkTree } from "../core/walk.ts";
import { cachedStep } from "../core/step.ts";
import { toolVersions } from "../core/tools.ts";
import { kernelComponent, type KernelArtifact } from "../kernel/build.ts";
import type { PackageArtifact } from "../pkgs/build.ts";
import { BronzeError } from "../core/errors.ts";
import { cycloneDxDocument } from "../sbom/cyclonedx.ts";
import { fileChecksums, SBOM_DIR, sbomFileNames, type SbomComponent, type SbomFile, type SbomInput } from "../sbom/model.ts";
import { spdxDocument } from "../sbom/spdx.ts";
import { mergeInto } from "./tree.ts";
import { FILES } from "../core/outputs.ts";

export interface RootfsArtifact {
  kind: "rootfs";
  key: string;
  /** rootfs.sqsh: the read-only root filesystem */
  image: string;
  /** the SBOMs embedded at /usr/share/spdx, also kept beside the image */
  spdx: string;
  cyclonedx: string;
  /** the bytes each component installed in the image (files and symlink targets, uncompressed), by merge owner */
  installedBytes: Record<string, number>;
  /** the image's executable files (any execute bit), by path: what an attacker in it could run */
  executables: string[];
}

/** What the rootfs step needs to write the SBOM: the image and its components, and who installed what. */
export interface RootfsSbom {
  image: SbomInput["image"];
  components: SbomComponent[];
  /** the component id of each merge owner: a package name, or `kernel <profile>` */
  componentOf: Record<string, string>;
  /** files the rootfs step writes itself (os-release) belong to this component */
  imageComponent: string;
}

/** The owner, in installedBytes, of what the rootfs step writes itself (os-release, the usr links). */
export const IMAGE_OWNER = "image";

/** Every file and symlink of the tree with its checksums and the component that installed it; the bytes of each owner. */
async function attributeFiles(tree: string, owners: ReadonlyMap<string, string>, sbom: RootfsSbom): Promise<{ files: SbomFile[]; installedBytes: Record<string, number>; executables: string[] }> {
  const files: SbomFile[] = [];
  const executables: string[] = [];
  const installedBytes: Record<string, number> = {};
  const count = (owner = IMAGE_OWNER, bytes: number) => {
    installedBytes[owner] = (installedBytes[owner] ?? 0) + bytes;
  };
  const unattributed: string[] = [];
  // synchronous calls, paced: a file at a time through the thread pool cost more than the hashing
  const pace = pacer();
  const paths = walkTree(tree).filter((e) => e.kind !== "directory");
  for (const { rel, kind } of paths.sort((a, b) => (a.rel < b.rel ? -1 : 1))) {
    const owner = owners.get(rel);
    const component = owner ? sbom.componentOf[owner] : rel === "usr/lib/os-release" || rel === "etc/os-release" || !rel.includes("/") ? sbom.imageComponent : undefined;
    if (!component) {
      unattributed.push(rel);
      continue;
    }
    if (kind === "symlink") {
      const target = readlinkSync(join(tree, rel));
      files.push({ path: rel, owner: component, ...fileChecksums(target), linkTarget: target });
      count(owner, Buffer.byteLength(target));
    } else {
      const data = readFileSync(join(tree, rel));
      files.push({ path: rel, owner: component, ...fileChecksums(data) });
      if (statSync(join(tree, rel)).mode & 0o111) executables.push(rel);
      count(owner, data.length);
    }
    await pace();
  }
  if (unattributed.length) throw new BronzeError(`the SBOM cannot attribute ${unattributed.map((p) => `/${p}`).join(", ")} to a component`);
  return { files, installedBytes, executables };
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

/**
 * mksquashfs's arguments for `tree`: every timestamp is the epoch, not the files' (a package's files carry
 * the time it was built, and a cached package may have been built under another commit's epoch).
 */
export function squashfsArgs(tree: string, out: string, epoch: number): string[] {
  return [tree, out, ...MKSQUASHFS_FLAGS, "-all-time", String(epoch), "-mkfs-time", String(epoch)];
}

/** A pseudo-file path for mksquashfs: quoted, with its quotes and backslashes escaped. */
const pseudoPath = (path: string) => `"${path.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;

/**
 * mksquashfs's pseudo definitions that give every entry its owner and mode (`path m MODE UID GID`): for a
 * tree whose owners are not all root (a container image's files), which -all-root would make root's.
 */
export function ownerDefinitions(entries: readonly { path: string; type: string; mode: number; uid: number; gid: number }[]): string {
  return entries.map((e) => `${pseudoPath(e.path)} m ${(e.type === "symlink" ? 0o777 : e.mode & 0o7777).toString(8)} ${e.uid} ${e.gid}\n`).join("");
}

/**
 * Packs `tree` into the SquashFS image `out`, every timestamp the epoch, every entry root's; with `owners`
 * (ownerDefinitions of the tree's entries, in a file), each entry has the owner they give it instead.
 */
export async function makeSquashfs(tree: string, out: string, epoch: number, logFile: string, owners?: string): Promise<void> {
  const args = squashfsArgs(tree, out, epoch);
  const withOwners = owners ? [...args.filter((a) => a !== "-all-root"), "-root-uid", "0", "-root-gid", "0", "-pf", owners] : args;
  // mksquashfs refuses SOURCE_DATE_EPOCH beside its time options (bronze repro and CI set it)
  await run("mksquashfs", withOwners, { env: { SOURCE_DATE_EPOCH: undefined }, logFile });
}

/** What goes into the root filesystem image. */
interface RootfsContent {
  packages: readonly PackageArtifact[];
  kernel: KernelArtifact;
  osReleaseText: string;
  sbom: RootfsSbom;
  epoch: number;
  logFile: string;
}

/**
 * Lays the root tree out in `tree` (the packages' files as hard links), writes its SBOMs, packs it into outDir;
 * returns the bytes each component installed (the SBOMs are not counted).
 */
async function packRootfs(tree: string, outDir: string, content: RootfsContent): Promise<{ installedBytes: Record<string, number>; executables: string[] }> {
  const { packages, kernel, osReleaseText, sbom } = content;
  const names = sbomFileNames(sbom.image.name);
  for (const dir of MOUNT_POINTS) await mkdir(join(tree, dir), { recursive: true });
  for (const [link, target] of USR_LINKS) await symlink(target, join(tree, link));
  const owners = new Map<string, string>();
  for (const pkg of packages) await mergeInto(tree, pkg.dir, pkg.name, owners);
  await mergeInto(tree, kernel.modulesRoot, kernelComponent(kernel.profile), owners);
  // new files only ("wx"): the merged ones are the cache's own (hard links), and a package may not ship these
  const writeNew = (path: string, data: string) => writeFile(join(tree, path), data, { flag: "wx" }).catch((error: NodeJS.ErrnoException) => {
    throw error.code === "EEXIST" ? new BronzeError(`/${path} is written by the image build; package '${owners.get(path)}' may not install it`) : error;
  });
  await writeNew("usr/lib/os-release", osReleaseText);
  await symlink("../usr/lib/os-release", join(tree, "etc/os-release"));
  // the SBOM lists every file but itself (it cannot hold its own checksum)
  const { files, installedBytes, executables } = await attributeFiles(tree, owners, sbom);
  const input: SbomInput = { image: sbom.image, components: sbom.components, files };
  await mkdir(join(tree, SBOM_DIR), { recursive: true });
  await writeNew(join(SBOM_DIR, names.spdx), spdxDocument(input));
  await writeNew(join(SBOM_DIR, names.cyclonedx), cycloneDxDocument(input));
  await copyFile(join(tree, SBOM_DIR, names.spdx), join(outDir, names.spdx));
  await copyFile(join(tree, SBOM_DIR, names.cyclonedx), join(outDir, names.cyclonedx));
  await makeSquashfs(tree, join(outDir, FILES.rootfs), content.epoch, content.logFile);
  return { installedBytes, executables };
}

export async function buildRootfs(
  packages: readonly PackageArtifact[],
  kernel: KernelArtifact,
  osReleaseText: string,
  ctx: BuildContext,
  sbom: RootfsSbom,
): Promise<RootfsArtifact> {
  const inputs = {
    step: "rootfs",
    recipe: await recipeDigest(import.meta.url, new URL("./tree.ts", import.meta.url).href),
    packages: packages.map((p) => [p.name, p.key]),
    kernel: kernel.identity,
    osRelease: osReleaseText,
    epoch: ctx.epoch,
    sbom,
    tools: await toolVersions([["mksquashfs", "-version"]]),
  };
  const names = sbomFileNames(sbom.image.name);
  const produce = async (outDir: string, key: string) => {
    const tree = await ownedWorkDir(join(ctx.workDir, "rootfs"), key.slice(0, 12));
    try {
      const { installedBytes, executables } = await packRootfs(tree, outDir, { packages, kernel, osReleaseText, sbom, epoch: ctx.epoch, logFile: join(ctx.logDir, "rootfs.log") });
      return { installedBytes: JSON.stringify(installedBytes), executables: JSON.stringify(executables) };
    } finally {
      await rm(tree, { recursive: true, force: true });
    }
  };
  return cachedStep(ctx, {
    name: "rootfs",
    inputs,
    produce,
    artifact: ({ key, dir, record }) => ({
      kind: "rootfs",
      key,
      image: join(dir, FILES.rootfs),
      spdx: join(dir, names.spdx),
      cyclonedx: join(dir, names.cyclonedx),
      installedBytes: JSON.parse(record.facts.installedBytes ?? "{}") as Record<string, number>,
      executables: JSON.parse(record.facts.executables ?? "[]") as string[],
    }),
  });
}

/** Every path of a SquashFS image (files, symlinks, directories), relative to its root. */
export async function imagePaths(image: string): Promise<string[]> {
  const listing = await run("unsquashfs", ["-lc", "-d", "", image]);
  return listing.split("\n").filter((line) => line.startsWith("/")).map((line) => line.slice(1));
}
