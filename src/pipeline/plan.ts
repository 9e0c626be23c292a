import { join } from "node:path";
import type { KeyObject } from "node:crypto";
import type { PipelineContext } from "./context.ts";
import { InputError } from "../core/errors.ts";
import { displayPath } from "../core/paths.ts";
import { loadTreeExtension, type TreeExtension } from "../extensions/assemble.ts";
import { loadTrustedKey } from "../oci/cosign.ts";
import { hardeningArch, type HardeningPolicy } from "../harden/build-gate.ts";
import { loadExceptions } from "../harden/gate.ts";
import { loadKernelSource, type KernelSource } from "../kernel/source.ts";
import { buildOrder, loadPackages } from "../pkgs/graph.ts";
import type { PackageDef } from "../pkgs/schema.ts";
import type { Profile } from "../profile/profile.ts";
import { osRelease } from "../rootfs/os-release.ts";
import { archNamed } from "../core/arch.ts";
import { efiBinaries, type EfiBinaryPaths } from "../uki/efi-binaries.ts";

/** Reviewed exceptions to the kernel hardening gate, relative to the project root. */
const EXCEPTIONS_FILE = "kernel/hardening/exceptions.yaml";

/** What a build of a profile is made of, read and checked before any step runs. */
export interface BuildPlan {
  profile: Profile;
  version: string;
  /** the userland packages the image and its tree extensions need, in build order */
  userland: PackageDef[];
  /** out-of-tree module packages the kernel builds into the rootfs */
  kernelModules: PackageDef[];
  /** and those it builds and signs for extensions, kept out of the rootfs */
  extensionModules: PackageDef[];
  /** the packages the tree extensions ship */
  extensionPackages: string[];
  treeExtensions: ReadonlyMap<string, TreeExtension>;
  trustedKeys: { path: string; key: KeyObject }[];
  kernelSource: KernelSource;
  /** os-release of the base image: a custom image's rootfs and initramfs are its base's */
  release: string;
  hardening: HardeningPolicy;
  /** systemd-stub and systemd-boot of the profile's architecture */
  efi: EfiBinaryPaths;
}

/** A package named by kernel.extensionModules: it must exist and be a kernel module. */
function kernelModulePackage(defs: ReadonlyMap<string, PackageDef>, name: string, profile: Profile): PackageDef {
  const def = defs.get(name);
  if (!def) throw new InputError(`${displayPath(profile.file)}: kernel.extensionModules names '${name}', which is not a package of pkgs/`);
  if (def.kind !== "kernel-module") throw new InputError(`${displayPath(profile.file)}: kernel.extensionModules names '${name}', a ${def.kind} package; list kernel-module packages only`);
  return def;
}

/** The packages the profile's tree extensions ship, checked: userland packages, and modules its kernel builds for extensions. */
function checkTreeExtensions(extensions: readonly TreeExtension[], defs: ReadonlyMap<string, PackageDef>, profile: Profile): string[] {
  for (const ext of extensions) {
    const where = `${displayPath(ext.dir)}/build.yaml`;
    for (const name of ext.packages) {
      const def = defs.get(name);
      if (!def) throw new InputError(`${where}: package '${name}' is not a package of pkgs/`);
      if (def.kind !== "userland") throw new InputError(`${where}: '${name}' is a ${def.kind} package; list it under kernelModules`);
    }
    for (const name of ext.kernelModules) {
      if (!profile.kernelExtensionModules.includes(name)) {
        throw new InputError(`${where}: kernel module package '${name}' is not built by the kernel of profile ${profile.baseImage}: add it to kernel.extensionModules there`);
      }
    }
  }
  return [...new Set(extensions.flatMap((e) => e.packages))];
}

/** The profile checked against pkgs/ and its extensions, and everything the steps will need. */
export async function planBuild(profile: Profile, ctx: PipelineContext, version: string): Promise<BuildPlan> {
  const defs = await loadPackages(join(ctx.projectRoot, "pkgs"));
  const treeExtensions = new Map<string, TreeExtension>();
  for (const ref of profile.extensions) if (ref.kind === "build") treeExtensions.set(ref.dir, await loadTreeExtension(ref.dir));
  const extensionModules = profile.kernelExtensionModules.map((name) => kernelModulePackage(defs, name, profile));
  const extensionPackages = checkTreeExtensions([...treeExtensions.values()], defs, profile);
  const wanted = buildOrder(defs, [...profile.packages, ...extensionPackages], displayPath(profile.file));
  return {
    profile,
    version,
    userland: wanted.filter((d) => d.kind === "userland"),
    kernelModules: wanted.filter((d) => d.kind === "kernel-module"),
    extensionModules,
    extensionPackages,
    treeExtensions,
    trustedKeys: await Promise.all(profile.trustedKeys.map(async (path) => ({ path, key: await loadTrustedKey(path) }))),
    kernelSource: await loadKernelSource(join(ctx.projectRoot, "kernel")),
    release: osRelease({ version, variant: profile.baseImage }),
    hardening: {
      arch: hardeningArch(profile.arch),
      kernelProfile: profile.kernelProfile,
      decisions: profile.hardeningDecisions,
      exceptions: await loadExceptions(join(ctx.projectRoot, EXCEPTIONS_FILE), EXCEPTIONS_FILE),
    },
    efi: await efiBinaries(archNamed(profile.arch), { cacheDir: ctx.cacheDir, logFile: join(ctx.logDir, "efi-binaries.log") }),
  };
}
