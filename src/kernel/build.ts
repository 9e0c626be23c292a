import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import type { BuildContext } from "../build/context.ts";
import { InputError } from "../core/errors.ts";
import { run } from "../core/exec.ts";
import { inputKey, recipeDigest, sha256 } from "../core/hash.ts";
import { runSandboxed, type Mount } from "../core/sandbox.ts";
import { toolVersions, type ToolSpec } from "../core/tools.ts";
import { fetchSource } from "../sources/fetch.ts";
import { describeMismatches, mergeFragments, renderSettings, unmetSettings, type Fragment } from "./config.ts";
import type { KernelSource } from "./source.ts";

/** A kernel and its modules, built together with one ephemeral signing key: one cache unit. */
export interface KernelArtifact {
  kind: "kernel";
  profile: string;
  key: string;
  release: string;
  /** the EFI-stub boot image (bzImage) */
  image: string;
  /** tree holding usr/lib/modules/<release>/ */
  modulesRoot: string;
  /** the resolved .config */
  config: string;
  /** DER certificate of the module-signing key compiled into the kernel */
  signingCert: string;
  signingCertSha256: string;
  moduleCount: number;
}

const KERNEL_TOOLS: readonly ToolSpec[] = ["gcc", "ld", "make", "bc", "flex", "bison", ["openssl", "version"], "depmod"];
const KEY_FILE = "certs/signing_key.pem";

export async function kernelFragments(projectRoot: string, arch: string, profile: string): Promise<Fragment[]> {
  const dir = join(projectRoot, "kernel", "config");
  const names = ["common.config", `${arch}.config`, join("profiles", `${profile}.config`)];
  return Promise.all(
    names.map(async (name) => {
      const path = join(dir, name);
      const text = await readFile(path, "utf8").catch(() => {
        throw new InputError(`kernel config fragment ${relative(projectRoot, path)} is missing (profile '${profile}', arch '${arch}')`);
      });
      return { file: relative(projectRoot, path), text };
    }),
  );
}

/** Overwrites the key with random bytes, then unlinks it: the module-signing key must not outlive the build. */
async function destroyKey(path: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return;
  await writeFile(path, randomBytes(Math.max(info.size, 4096)));
  await rm(path, { force: true });
}

async function countModules(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((e) => e.endsWith(".ko")).length;
}

export async function buildKernel(
  source: KernelSource,
  arch: string,
  profile: string,
  ctx: BuildContext,
): Promise<KernelArtifact> {
  const logFile = join(ctx.logDir, `kernel-${profile}.log`);
  const settings = mergeFragments(await kernelFragments(ctx.projectRoot, arch, profile));
  const fragmentText = renderSettings(settings);
  const inputs = {
    step: "kernel",
    recipe: await recipeDigest(import.meta.url, new URL("../core/sandbox.ts", import.meta.url).href),
    source: source.pin.sha256,
    arch,
    profile,
    config: fragmentText,
    sourceDateEpoch: source.sourceDateEpoch,
    tools: await toolVersions(KERNEL_TOOLS),
  };
  const key = inputKey(inputs);
  const artifact = async (dir: string, release: string, fingerprint: string): Promise<KernelArtifact> => ({
    kind: "kernel",
    profile,
    key,
    release,
    image: join(dir, "vmlinuz"),
    modulesRoot: join(dir, "modules"),
    config: join(dir, "config"),
    signingCert: join(dir, "module-signing.der"),
    signingCertSha256: fingerprint,
    moduleCount: await countModules(join(dir, "modules")),
  });

  const cached = await ctx.store.lookup(key);
  if (cached) return artifact(cached.dir, cached.record.facts.release ?? "", cached.record.facts.signingCertSha256 ?? "");

  ctx.ran.push(`kernel ${profile}`);
  await rm(logFile, { force: true });
  const verified = await fetchSource(source.pin, { cacheDir: ctx.cacheDir, definedIn: source.file, logFile });
  const work = join(ctx.workDir, "kernel", `${profile}-${key.slice(0, 12)}`);
  const tree = join(work, "linux");
  await rm(work, { recursive: true, force: true });
  await mkdir(tree, { recursive: true });
  try {
    await run("tar", ["-xf", verified.path, "-C", tree, "--strip-components=1", "--no-same-owner"], { logFile });
    await writeFile(join(work, "fragments.config"), fragmentText);
    const entry = await ctx.store.put(key, `kernel ${profile}`, inputs, async (outDir) => {
      const mounts: Mount[] = [
        { host: work, at: "/build", writable: true },
        { host: outDir, at: "/out", writable: true },
      ];
      const env = {
        ARCH: arch === "x86_64" ? "x86" : arch,
        KBUILD_BUILD_TIMESTAMP: `@${source.sourceDateEpoch}`,
        KBUILD_BUILD_USER: "bronze",
        KBUILD_BUILD_HOST: "bronze",
        KBUILD_BUILD_VERSION: "1",
        JOBS: String(ctx.jobs),
      };
      const sandbox = { mounts, cwd: "/build/linux", env, logFile };
      await runSandboxed("make KCONFIG_ALLCONFIG=/build/fragments.config allnoconfig", sandbox);
      const mismatches = unmetSettings(settings, await readFile(join(tree, ".config"), "utf8"));
      if (mismatches.length) {
        throw new InputError(`kernel config for profile '${profile}': ${mismatches.length} option(s) did not take effect:\n${describeMismatches(mismatches)}`);
      }
      await runSandboxed('make -j"$JOBS" bzImage modules', sandbox);
      await runSandboxed(
        "make -s modules_install INSTALL_MOD_PATH=/out/modules/usr INSTALL_MOD_STRIP=1 && " +
          'rm -f /out/modules/usr/lib/modules/*/build /out/modules/usr/lib/modules/*/source && ' +
          "cp arch/x86/boot/bzImage /out/vmlinuz && cp .config /out/config && " +
          "cp certs/signing_key.x509 /out/module-signing.der && make -s kernelrelease > /out/release",
        sandbox,
      );
      await destroyKey(join(tree, KEY_FILE));
      const release = (await readFile(join(outDir, "release"), "utf8")).trim();
      return { release, signingCertSha256: sha256(await readFile(join(outDir, "module-signing.der"))) };
    });
    return artifact(entry.dir, entry.record.facts.release ?? "", entry.record.facts.signingCertSha256 ?? "");
  } finally {
    await destroyKey(join(tree, KEY_FILE));
    await rm(work, { recursive: true, force: true });
  }
}

