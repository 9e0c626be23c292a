import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { Store } from "../../src/core/store.ts";
import { isPackageEntry } from "../../src/pkgs/build.ts";
import { DEFAULT_ARCH } from "../../src/core/arch.ts";
import { loadProfile, outputDirName } from "../../src/profile/profile.ts";
import { PROJECT_ROOT, tempDir } from "./tmp.ts";

/** An image profile on the minimal kernel, with an extra kernel config fragment; the minimal profile's command line and kernel modules. */
export async function profileWithExtraConfig(name: string, config: string): Promise<string> {
  const dir = await tempDir();
  await writeFile(join(dir, "extra.config"), config);
  const file = join(dir, `${name}.yaml`);
  const minimal = await loadProfile(join(PROJECT_ROOT, "profiles", "minimal.yaml"));
  await writeFile(file, `name: ${name}\narch: x86_64\nkernel:\n  profile: minimal\n  extraConfig: [extra.config]\n  extensionModules: [${minimal.kernelExtensionModules.join(", ")}]\npackages: [musl, init, hello-module]\ncmdline: ${minimal.cmdline}\n`);
  return file;
}

/** Starts `bronze build` (not awaited), output as CI sees it. */
export function startBuild(profile: string, cacheDir?: string, extraArgs: readonly string[] = []) {
  return execa(join(PROJECT_ROOT, "bin", "bronze"), ["build", "--profile", profile, ...(cacheDir ? ["--cache-dir", cacheDir] : []), ...extraArgs], {
    cwd: PROJECT_ROOT,
    reject: false,
    all: true,
    env: { CI: "true" },
  });
}

/**
 * `_out/<profile>` (`_out/<profile>-<oci arch>` for another arch) as a build of the profile leaves it: built
 * here when no earlier test did (from the cache when one did), so that a test file reading it passes when run alone.
 */
export async function builtImage(profile: string, arch?: string): Promise<string> {
  const result = await startBuild(profile, undefined, arch ? ["--arch", arch] : []);
  if (result.exitCode !== 0) throw new Error(`bronze build --profile ${profile}${arch ? ` --arch ${arch}` : ""} failed:\n${String(result.all)}`);
  return join(PROJECT_ROOT, "_out", outputDirName({ name: profile, arch: arch ?? DEFAULT_ARCH.name }));
}

/**
 * A new cache holding the package entries of the project's cache (those the shared minimal image left,
 * if any): a build from it makes its kernel and what follows, not musl again.
 */
export async function cacheWithProjectPackages(): Promise<string> {
  const cache = await tempDir("bronze-cache-");
  const store = new Store(cache);
  for (const entry of (await new Store(join(PROJECT_ROOT, ".cache", "bronze")).entries()).filter(isPackageEntry)) await store.adopt(entry);
  return cache;
}
