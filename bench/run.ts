// make bench: side-by-side measurements in one run, written to bench/results.json
// and printed as a table. Ratios are taken pair by pair (candidate / baseline,
// run back to back) and reported as median with min and max. A benchmark
// reports; it never fails on a goal.
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import os from "node:os";
import { execa } from "execa";
import { buildKernel } from "../src/kernel/build.ts";
import { loadKernelSource } from "../src/kernel/source.ts";
import { buildPackageSet } from "../src/pkgs/build-set.ts";
import { loadPackages } from "../src/pkgs/graph.ts";
import { fetchSource } from "../src/sources/fetch.ts";
import { boot, BOOT_DEFAULTS } from "../src/boot/qemu.ts";
import { createContext } from "../src/pipeline/context.ts";
import { buildProfile } from "../src/pipeline/pipeline.ts";
import { projectVersion } from "../src/core/version.ts";
import { sourceDateEpoch } from "../src/core/epoch.ts";
import { DEFAULT_ARCH, HOST_ARCH } from "../src/core/arch.ts";
import { writeCpio } from "../src/initramfs/cpio.ts";
import { loadProfile, profilePath } from "../src/profile/profile.ts";
import { buildRootfs, squashfsArgs } from "../src/rootfs/build.ts";
import { osRelease } from "../src/rootfs/os-release.ts";
import { assembleUki } from "../src/uki/uki.ts";
import { launchRegistry } from "../test/helpers/registry-process.ts";
import { startFaultProxy } from "../test/helpers/fault-proxy.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { pushLayout } from "../src/registry/copy.ts";
import { parseReference } from "../src/registry/reference.ts";
import { imageDigest } from "../src/extensions/signature.ts";
import { openLayout } from "../src/oci/layout-read.ts";
import { ecKeyPair, extensionManifest } from "../test/helpers/extension.ts";
import { randomBytes } from "node:crypto";
import { fileIdentities } from "../test/helpers/identities.ts";
import { readAdvisories } from "../src/vuln/osv.ts";
import { affectedBy, gate, sbomComponents } from "../src/vuln/scan.ts";
import { pair, RUNS, stats, timed, type Figure, type Stats } from "./harness.ts";
import { archFigures } from "./arches.ts";
import { bootFloorFigures, mediaFigures } from "./media.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
async function withImage<T>(profile: string, use: (outDir: string) => Promise<T>): Promise<T | undefined> {
  const outDir = join(ROOT, "_out", profile);
  const present = await readFile(join(outDir, "manifest.json")).then(() => true, () => false);
  return present ? use(outDir) : undefined;
}

async function cpioPair(scratch: string): Promise<Figure> {
  const tree = join(scratch, "cpio-tree");
  await mkdir(tree, { recursive: true });
  await execa("sh", ["-c", `zstd -dc '${join(ROOT, "_out/minimal/initramfs.cpio.zst")}' | (cd '${tree}' && cpio -id --quiet)`]);
  const init = await readFile(join(tree, "init"));
  const sqsh = await readFile(join(tree, "rootfs.sqsh"));
  return pair(
    "cpio writer vs GNU cpio (newc, /init + rootfs.sqsh of minimal)",
    "<= 1.0",
    () => execa("sh", ["-c", `cd '${tree}' && printf 'init\\nrootfs.sqsh\\n' | cpio -o -H newc --reproducible --quiet > '${join(scratch, "gnu.cpio")}'`]),
    () =>
      writeFile(
        join(scratch, "ours.cpio"),
        writeCpio(
          [
            { type: "file", path: "init", mode: 0o755, data: init },
            { type: "file", path: "rootfs.sqsh", mode: 0o644, data: sqsh },
          ],
          0,
        ),
      ),
  );
}

async function ukiPair(scratch: string, outDir: string): Promise<Figure> {
  const manifest = JSON.parse(await readFile(join(outDir, "manifest.json"), "utf8")) as { cmdline: string; kernel: { release: string } };
  const files = { osrel: join(scratch, "osrel"), cmdline: join(scratch, "cmdline"), uname: join(scratch, "uname"), linux: join(outDir, "vmlinuz"), initrd: join(outDir, "initramfs.cpio.zst") };
  const os = osRelease({ version: "bench", variant: "bench" });
  await writeFile(files.osrel, os);
  await writeFile(files.cmdline, `${manifest.cmdline}\0`);
  await writeFile(files.uname, manifest.kernel.release);
  const stub = await readFile(DEFAULT_ARCH.stub);
  const linux = await readFile(files.linux);
  const initrd = await readFile(files.initrd);
  // objcopy needs each section's address: after the stub, 64 KiB apart, then room for the kernel
  const linuxVma = 0x100000;
  const initrdVma = linuxVma + Math.ceil((linux.length * 2) / 0x100000) * 0x100000;
  const args = [
    "--add-section", `.osrel=${files.osrel}`, "--change-section-vma", ".osrel=0x20000",
    "--add-section", `.cmdline=${files.cmdline}`, "--change-section-vma", ".cmdline=0x30000",
    "--add-section", `.uname=${files.uname}`, "--change-section-vma", ".uname=0x40000",
    "--add-section", `.linux=${files.linux}`, "--change-section-vma", `.linux=0x${linuxVma.toString(16)}`,
    "--add-section", `.initrd=${files.initrd}`, "--change-section-vma", `.initrd=0x${initrdVma.toString(16)}`,
    DEFAULT_ARCH.stub, join(scratch, "objcopy.efi"),
  ];
  return pair(
    `UKI writer vs objcopy (${outDir.split("/").at(-1) ?? ""} kernel + initramfs)`,
    "<= 1.0",
    () => execa("objcopy", args),
    () => writeFile(join(scratch, "ours.efi"), assembleUki({ stub, linux, initrd, osRelease: os, cmdline: manifest.cmdline, uname: manifest.kernel.release })),
  );
}

async function squashfsPair(scratch: string): Promise<Figure> {
  const profile = await loadProfile(profilePath(ROOT, "minimal"));
  const version = await projectVersion(ROOT);
  const ctx = createContext(ROOT, await sourceDateEpoch(ROOT));
  const built = await buildProfile(profile, ctx, version);
  const tree = join(scratch, "sqsh-tree");
  await execa("unsquashfs", ["-q", "-d", tree, join(built.outDir, "rootfs.sqsh")]);
  const packages = built.packages.filter((p) => profile.packages.includes(p.name));
  const release = osRelease({ version, variant: profile.name });
  let run = 0;
  return pair(
    "rootfs stage (merge + mksquashfs, fresh cache) vs bare mksquashfs of the same tree",
    "<= 1.05",
    () => execa("mksquashfs", squashfsArgs(tree, join(scratch, "bare.sqsh"), ctx.epoch), { env: { SOURCE_DATE_EPOCH: undefined } }),
    async () => {
      const fresh = createContext(ROOT, ctx.epoch, join(scratch, `cache-${run++}`));
      await buildRootfs(packages, built.kernel, release, fresh, built.sbom);
    },
  );
}

async function bootFigure(profile: string): Promise<Figure | undefined> {
  return withImage(profile, async (outDir) => {
    const samples: number[] = [];
    for (let i = 0; i < Math.min(RUNS, 3); i++) {
      const result = await boot({ kind: "uki", uki: join(outDir, "uki.efi") }, BOOT_DEFAULTS);
      samples.push(result.readyAfterMs);
    }
    return { name: `power-on to ready, ${profile} UKI under OVMF (TCG)`, unit: "ms", value: stats(samples) };
  });
}

async function noopRebuild(profileName: string): Promise<Figure | undefined> {
  return withImage(profileName, async () => {
    const profile = await loadProfile(profilePath(ROOT, profileName));
    const version = await projectVersion(ROOT);
    const epoch = await sourceDateEpoch(ROOT);
    const first = await buildProfile(profile, createContext(ROOT, epoch), version);
    const cold = [...first.packages.map((p) => p.key), first.kernel.key];
    const ctx = createContext(ROOT, epoch);
    let coldMs = 0;
    for (const key of cold) {
      const record = (await ctx.store.lookup(key))?.record;
      // the kernel entry's own time is its seal; the compile it sealed is recorded beside it
      coldMs += (record?.durationMs ?? 0) + Number(record?.facts.compiledIn ?? 0);
    }
    const samples: number[] = [];
    for (let i = 0; i < RUNS; i++) samples.push((await buildProfile(profile, createContext(ROOT, epoch), version)).durationMs);
    const noop = stats(samples);
    return {
      name: `no-op rebuild of ${profileName} vs its cold package + kernel build time (from the cache records)`,
      unit: "ms",
      value: noop,
      baseline: { median: coldMs, min: coldMs, max: coldMs },
      ratio: stats(samples.map((s) => s / coldMs)),
      goal: "<= 0.005",
    };
  });
}

/**
 * A build that changed nothing, through the CLI as a user runs it, against Node's own bare start-up
 * (the same binary, `-e 0`); the output directory must keep every file as it was (inode and mtime).
 */
async function noopCli(profileName: string): Promise<Figure | undefined> {
  return withImage(profileName, async (outDir) => {
    const bronze = () => execa(join(ROOT, "bin", "bronze"), ["build", "--profile", profileName], { cwd: ROOT, env: { CI: "true" }, all: true });
    await bronze();
    const before = await fileIdentities(outDir);
    const figure = await pair(
      `no-op build of ${profileName} (bronze build, CLI) vs Node's bare start-up (node -e 0)`,
      "<= 3.0",
      () => execa(process.execPath, ["-e", "0"]),
      async () => {
        const result = await bronze();
        if (!/0 build step\(s\) ran/.test(result.all)) throw new Error(`a build that changed nothing ran steps:\n${result.all}`);
      },
    );
    const after = await fileIdentities(outDir);
    const rewritten = Object.keys(before).filter((f) => before[f] !== after[f]).length + Object.keys(after).filter((f) => !(f in before)).length;
    return { ...figure, note: `${rewritten} file(s) of ${Object.keys(before).length} in ${outDir} rewritten (goal: none)` };
  });
}

/**
 * A custom profile on a built base: change only its kernel arguments, rebuild (CLI, as a user runs it).
 * Each run has arguments no earlier build used, so the UKI and the installer are really made anew.
 */
async function kernelArgsRebuild(scratch: string, base: string): Promise<Figure | undefined> {
  return withImage(base, async () => {
    const file = join(scratch, `args-${base}.yaml`);
    const build = async (marker: string) => {
      await writeFile(file, `name: bench-args-${base}\nbase: ${base}\nkernelArgs: [bronze.bench=${marker}]\n`);
      const result = await execa(join(ROOT, "bin", "bronze"), ["build", "--profile", file], { cwd: ROOT, env: { CI: "true" }, all: true });
      if (!/ran: uki, installer\n/.test(result.all)) throw new Error(`a kernel-argument change rebuilt more than the UKI and the installer:\n${result.all}`);
    };
    await build(`warm-${process.pid}`);
    const samples: number[] = [];
    for (let i = 0; i < RUNS; i++) samples.push(await timed(() => build(`${process.pid}-${i}-${Date.now()}`)));
    await rm(join(ROOT, "_out", `bench-args-${base}`), { recursive: true, force: true });
    return { name: `change only the kernel arguments of a profile on ${base}: new UKI and installer (bronze build, CLI)`, unit: "ms", value: stats(samples), goal: "<= 1000 ms" };
  });
}

/**
 * A custom profile on a built base: add one extension (a signed OCI image with 4 MiB of files,
 * new for every run so its layer is really made), against changing only the kernel arguments.
 * Both through the CLI, as a user runs them; the extension image exists before the timing starts.
 */
async function addExtension(scratch: string, base: string): Promise<Figure | undefined> {
  return withImage(base, async () => {
    const dir = join(scratch, `extension-${base}`);
    await mkdir(dir, { recursive: true });
    const keys = await ecKeyPair(dir, "bench");
    const file = join(dir, "profile.yaml");
    const name = `bench-ext-${base}`;
    let count = 0;
    const run = () => execa(join(ROOT, "bin", "bronze"), ["build", "--profile", file], { cwd: ROOT, env: { CI: "true" }, all: true });
    const build = async (expect: RegExp) => {
      const result = await run();
      if (!expect.test(result.all) || /ran: .*\b(kernel|rootfs)\b/.test(result.all)) throw new Error(`unexpected steps:\n${result.all}`);
    };
    const profile = (extension: string, digest: string, marker: string) =>
      writeFile(file, `name: ${name}\nbase: ${base}\nkernelArgs: [bronze.bench=${marker}]\nextensions:\n  - image: ${extension}\n    digest: ${digest}\ntrustedKeys: [${keys.pub}]\n`);
    /** a new signed extension image, made before any timing */
    const newExtension = async () => {
      const n = count++;
      const src = join(dir, `src-${n}`);
      await mkdir(join(src, "rootfs", "usr", "share", "bench"), { recursive: true });
      await writeFile(join(src, "manifest.yaml"), extensionManifest("bench"));
      await writeFile(join(src, "rootfs", "usr", "share", "bench", "data.bin"), randomBytes(4 << 20));
      const bronze = (args: string[]) => execa(join(ROOT, "bin", "bronze"), args, { cwd: ROOT, env: { CI: "true" } });
      await bronze(["extension", "build", src, "--out", join(dir, `out-${n}`)]);
      const tar = join(dir, `out-${n}`, "bench.oci.tar");
      await bronze(["extension", "sign", tar, "--key", keys.key]);
      return { tar, digest: imageDigest(await openLayout(tar)) };
    };
    let current = await newExtension();
    await profile(current.tar, current.digest, `start-${process.pid}`);
    // the first build of the custom profile may also make what the base had not (a rootfs for a newer commit)
    await run();
    const figure = await pair(
      `add one extension (signed OCI image, 4 MiB) to a profile on ${base}: verify, check, new layer, initramfs, UKI and installer (bronze build, CLI) vs changing only the kernel arguments`,
      "add one extension <= 2000 ms",
      async () => {
        await profile(current.tar, current.digest, `${process.pid}-${Date.now()}`);
        return timed(() => build(/ran: uki, installer\n/));
      },
      async () => {
        current = await newExtension();
        await profile(current.tar, current.digest, `${process.pid}-${Date.now()}`);
        return timed(() => build(/ran: .*extension bench/));
      },
      true,
    );
    await rm(join(ROOT, "_out", name), { recursive: true, force: true });
    return figure;
  });
}

/**
 * The shared cache: a machine with an empty cache builds the minimal profile from a local registry
 * (every entry pulled and checked, nothing built), against a no-op rebuild from the local cache.
 */
async function sharedCacheFigure(scratch: string): Promise<Figure> {
  const registry = await launchRegistry(join(scratch, "cache-registry"));
  try {
    const repository = `${registry.address}/bronze/cache`;
    const bronze = (args: string[]) => execa(join(ROOT, "bin", "bronze"), ["build", "--profile", "minimal", "--plain-http", ...args], { cwd: ROOT, env: { CI: "true" }, all: true });
    await bronze(["--cache-to", repository]);
    let fresh = 0;
    return await pair(
      "minimal from the shared cache on a machine with an empty cache (every entry pulled from a local registry) vs a no-op rebuild from the local cache",
      "(none: the cost of pulling)",
      () => bronze([]),
      async () => {
        const result = await bronze(["--cache-dir", join(scratch, `fresh-cache-${fresh++}`), "--cache-from", repository]);
        if (!/0 build step\(s\) ran/.test(result.all)) throw new Error(`the shared cache did not serve every step:\n${result.all}`);
      },
    );
  } finally {
    registry.stop();
  }
}

/** A push to a new repository through a proxy that breaks 12 % of the requests, against the same push without it. */
async function faultyPush(registry: string, push: (address: string, repository: string) => Promise<unknown>): Promise<Figure> {
  const proxy = await startFaultProxy(registry, 0.12, 12);
  let n = 0;
  try {
    const figure = await pair(
      "push of the installer to a new repository through a proxy breaking 12 % of the requests vs the same push without faults",
      "report",
      () => push(registry, `bench/clean-${n++}`),
      () => push(proxy.address, `bench/faults-${n++}`),
    );
    return { ...figure, note: `faults injected: ${JSON.stringify(proxy.faults)} in ${proxy.requests} requests` };
  } finally {
    proxy.stop();
  }
}

/** A push to a new repository signed and attested (--sign-key), against the same push unsigned. */
async function signedPush(scratch: string, registry: string, layout: string, tag: string): Promise<Figure> {
  const key = join(scratch, "installer-signing.key");
  await execa("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key]);
  let n = 0;
  const push = (extra: readonly string[]) => execa(join(ROOT, "bin", "bronze"), ["push", layout, `${registry}/bench/signed-${n++}:${tag}`, "--plain-http", ...extra]);
  return pair("push of the installer to a new repository, signed and attested (signature, provenance, 2 SBOMs) vs the same push unsigned", "report", () => push([]), () => push(["--sign-key", key]));
}

/**
 * bronze push against skopeo copy of the same installer layout: cold (a fresh
 * registry for each push, so neither tool knows any blob) and warm (every blob present).
 */
async function pushFigures(scratch: string, outDir: string): Promise<Figure[]> {
  const { installer } = JSON.parse(await readFile(join(outDir, "manifest.json"), "utf8")) as { installer: { tag: string } };
  const layout = join(outDir, "installer");
  const registries: { address: string; stop: () => void }[] = [];
  const fresh = async () => {
    const registry = await launchRegistry(join(scratch, `registry-${registries.length}`));
    registries.push(registry);
    return registry.address;
  };
  const bronzePush = async (address: string) => (await execa(join(ROOT, "bin", "bronze"), ["push", layout, `${address}/bench/installer:${installer.tag}`, "--plain-http"])).stdout;
  // the same push without the CLI process: what the client itself costs, without Node's start-up
  const bronzeInProcess = async (address: string) => {
    const ref = parseReference(`${address}/bench/installer:${installer.tag}`);
    return pushLayout(new RegistryClient(ref.registry, { scheme: "http", attempts: 5, backoffMs: 200 }), layout, ref, { chunkSize: 8 << 20 });
  };
  const skopeoCopy = (address: string) => execa("skopeo", ["copy", "--all", "--quiet", "--dest-tls-verify=false", `oci:${layout}:${installer.tag}`, `docker://${address}/bench/installer:${installer.tag}`]);
  try {
    const targets = { skopeo: "", bronze: "" };
    const cold = await pair(
      `push of the ${outDir.split("/").at(-1) ?? ""} installer to an empty registry: bronze push vs skopeo copy`,
      "<= 1.0",
      async () => {
        targets.skopeo = await fresh();
        const start = process.hrtime.bigint();
        await skopeoCopy(targets.skopeo);
        return Number(process.hrtime.bigint() - start) / 1e6;
      },
      async () => {
        targets.bronze = await fresh();
        const start = process.hrtime.bigint();
        await bronzePush(targets.bronze);
        return Number(process.hrtime.bigint() - start) / 1e6;
      },
      true,
    );
    const coldInProcess = await pair(
      "the same, bronze's client in process (no CLI start-up) vs skopeo copy",
      "<= 1.0",
      async () => {
        const address = await fresh();
        const start = process.hrtime.bigint();
        await skopeoCopy(address);
        return Number(process.hrtime.bigint() - start) / 1e6;
      },
      async () => {
        const address = await fresh();
        const start = process.hrtime.bigint();
        await bronzeInProcess(address);
        return Number(process.hrtime.bigint() - start) / 1e6;
      },
      true,
    );
    const warm = await pair(
      "re-push of the unchanged installer (every blob present): bronze push vs skopeo copy",
      "<= 1.0",
      () => skopeoCopy(targets.skopeo),
      () => bronzePush(targets.bronze),
    );
    const warmInProcess = await pair(
      "the same, bronze's client in process (no CLI start-up) vs skopeo copy",
      "<= 1.0",
      () => skopeoCopy(targets.skopeo),
      () => bronzeInProcess(targets.bronze),
    );
    const sent = Number(/(\d+) bytes sent/.exec(await bronzePush(targets.bronze))?.[1] ?? NaN);
    const faults = await faultyPush(targets.bronze, (address, repository) => execa(join(ROOT, "bin", "bronze"), ["push", layout, `${address}/${repository}:${installer.tag}`, "--plain-http"]));
    const signed = await signedPush(scratch, targets.bronze, layout, installer.tag);
    return [cold, coldInProcess, warm, warmInProcess, faults, signed, { name: "bytes uploaded by bronze on a re-push of an unchanged image", unit: "bytes", value: { median: sent, min: sent, max: sent }, goal: "0" }];
  } finally {
    for (const r of registries) r.stop();
  }
}

/**
 * The minimal kernel built cold through bronze (fresh cache: unpack, allnoconfig from the
 * fragments, checks, compile, sign, verify, cache) against a bare `make -j$(nproc) bzImage
 * modules` of the same resolved config in a fresh unpack of the same source. One pair: each
 * side is a whole kernel build, minutes on 2 cores.
 */
async function kernelPair(scratch: string): Promise<Figure> {
  const profile = await loadProfile(profilePath(ROOT, "minimal"));
  const epoch = await sourceDateEpoch(ROOT);
  const source = await loadKernelSource(join(ROOT, "kernel"));
  const cold = createContext(ROOT, epoch, join(scratch, "kernel-cache"));
  const spec = { arch: profile.arch, profile: profile.kernelProfile, extraConfig: profile.kernelExtraConfig, modules: [], signingKey: undefined };
  const started = process.hrtime.bigint();
  const kernel = await buildKernel(source, spec, cold);
  const bronzeMs = Number(process.hrtime.bigint() - started) / 1e6;

  const tree = join(scratch, "bare-linux");
  await mkdir(tree, { recursive: true });
  const verified = await fetchSource(source.pin, { cacheDir: createContext(ROOT, epoch).cacheDir, definedIn: source.file, logFile: join(scratch, "fetch.log") });
  await execa("tar", ["-xf", verified.path, "-C", tree, "--strip-components=1", "--no-same-owner"]);
  // bronze's config names its tmpfs key; the bare build makes its own key where the kernel's defaults put it
  const config = (await readFile(kernel.config, "utf8")).replace(/^CONFIG_MODULE_SIG_KEY=.*$/m, 'CONFIG_MODULE_SIG_KEY="certs/signing_key.pem"');
  await writeFile(join(tree, ".config"), config);
  const jobs = String(os.availableParallelism());
  const env = { KBUILD_BUILD_TIMESTAMP: `@${source.sourceDateEpoch}`, KBUILD_BUILD_USER: "bronze", KBUILD_BUILD_HOST: "bronze" };
  const bareStart = process.hrtime.bigint();
  await execa("make", ["-C", tree, "-s", "olddefconfig"], { env });
  await execa("make", ["-C", tree, `-j${jobs}`, "bzImage", "modules"], { env });
  const bareMs = Number(process.hrtime.bigint() - bareStart) / 1e6;
  await rm(tree, { recursive: true, force: true });
  const one = (v: number) => ({ median: v, min: v, max: v });
  return {
    name: `minimal kernel, cold: bronze (unpack, config, compile, sign, verify, cache) vs bare make -j${jobs} bzImage modules of the same config`,
    unit: "ms",
    value: one(bronzeMs),
    baseline: one(bareMs),
    ratio: one(bronzeMs / bareMs),
    goal: "<= 1.03",
    note: "one pair (each side is a whole kernel build); the bare side excludes unpacking the source",
  };
}

/** The default kernel's spec, with extra config fragments. */
async function defaultKernel(extraConfig: readonly string[] = []) {
  const profile = await loadProfile(profilePath(ROOT, "default"));
  const defs = await loadPackages(join(ROOT, "pkgs"));
  const named = (names: readonly string[]) => names.flatMap((n) => defs.get(n) ?? []).filter((d) => d.kind === "kernel-module");
  return {
    source: await loadKernelSource(join(ROOT, "kernel")),
    spec: {
      arch: profile.arch,
      profile: profile.kernelProfile,
      extraConfig: [...profile.kernelExtraConfig, ...extraConfig],
      modules: named(profile.packages),
      extensionModules: named(profile.kernelExtensionModules),
    },
  };
}

/**
 * The kernel work users wait for on default, with the default kernel compiled (by `make`): a new
 * ephemeral key (the seal alone: a fresh store, this machine's compiled trees), and one option changed
 * (recompiled from the compiled tree, then sealed). Both against the default tree's recorded cold compile.
 */
async function kernelSealFigures(scratch: string): Promise<Figure[]> {
  const epoch = await sourceDateEpoch(ROOT);
  const shared = createContext(ROOT, epoch);
  const { source, spec } = await defaultKernel();
  // the default image's kernel, as `make` built it (from the cache: no compile, no seal)
  if (!(await withImage("default", async () => true))) return [];
  const base = await buildKernel(source, spec, shared);
  const cold = Number((await shared.store.lookup(base.key))?.record.facts.compiledIn);
  const one = (v: number) => ({ median: v, min: v, max: v });
  const runs = Math.min(RUNS, Number(process.env.BENCH_SEAL_RUNS ?? 2));
  const seals: number[] = [];
  for (let i = 0; i < runs; i++) {
    const fresh = createContext(ROOT, epoch, join(scratch, `seal-${i}`), shared.compileCache.root);
    seals.push(await timed(() => buildKernel(source, spec, fresh)));
  }
  const option = join(scratch, "one-option.config");
  await writeFile(option, "CONFIG_CRC4=m\n");
  const changed = await defaultKernel([option]);
  const fresh = createContext(ROOT, epoch, join(scratch, "one-option"), shared.compileCache.root);
  const before = new Set((await shared.compileCache.entries()).map((e) => e.key));
  const changedMs = await timed(() => buildKernel(changed.source, changed.spec, fresh));
  // the next run measures a recompile again
  for (const e of await shared.compileCache.entries()) if (!before.has(e.key)) await rm(join(e.tree, ".."), { recursive: true, force: true });
  return [
    {
      name: "a new ephemeral key on the compiled default kernel (seal: overlay, relink, sign, verify, cache) vs its cold compile (recorded)",
      unit: "ms",
      value: stats(seals),
      baseline: one(cold),
      ratio: stats(seals.map((s) => s / cold)),
      goal: "<= 90000 ms",
      note: `${runs} run(s) (BENCH_SEAL_RUNS)`,
    },
    {
      name: "one kernel option changed on default (CONFIG_CRC4=m: recompile from the compiled tree, seal) vs its cold compile (recorded)",
      unit: "ms",
      value: one(changedMs),
      baseline: one(cold),
      ratio: one(changedMs / cold),
      goal: "<= 180000 ms",
      note: "one run; the recompiled tree is removed afterwards",
    },
  ];
}

async function sizes(): Promise<Figure[]> {
  const figures: Figure[] = [];
  // the shipped profiles only, not what tests left in _out
  const shipped = (await readdir(join(ROOT, "profiles"))).filter((f) => f.endsWith(".yaml")).map((f) => f.replace(/\.yaml$/, ""));
  for (const profile of shipped.sort()) {
    const manifest = await readFile(join(ROOT, "_out", profile, "manifest.json"), "utf8").catch(() => undefined);
    if (!manifest) continue;
    for (const a of (JSON.parse(manifest) as { artifacts: { name: string; size: number }[] }).artifacts) {
      figures.push({ name: `size ${profile}/${a.name}`, unit: "bytes", value: { median: a.size, min: a.size, max: a.size } });
    }
  }
  return figures;
}

function format(f: Figure): string {
  const v = (s: Stats | undefined, unit: string) => (s ? `${s.median.toFixed(unit === "bytes" ? 0 : 1)} [${s.min.toFixed(unit === "bytes" ? 0 : 1)}..${s.max.toFixed(unit === "bytes" ? 0 : 1)}] ${unit}` : "");
  const ratio = f.ratio ? `ratio ${f.ratio.median.toFixed(3)} [${f.ratio.min.toFixed(3)}..${f.ratio.max.toFixed(3)}]${f.goal ? ` (goal ${f.goal})` : ""}` : "";
  return `${f.name}\n    ${v(f.value, f.unit)}${f.baseline ? `   baseline ${v(f.baseline, f.unit)}` : ""}   ${ratio}${f.note ? `\n    ${f.note}` : ""}`;
}

/**
 * The vulnerability gate on the default SBOM against 4,000 advisories (the shipped packages' among many
 * others'): the CLI's time, and its matching (advisories indexed by package) against matching every
 * component with every advisory.
 */
async function vulnFigures(scratch: string, outDir: string): Promise<Figure[]> {
  const dir = join(scratch, "advisories");
  await mkdir(dir, { recursive: true });
  const names = ["musl", "linux", "e2fsprogs", ...Array.from({ length: 397 }, (_, i) => `package${i}`)];
  for (let i = 0; i < 4000; i++) {
    const name = names[i % names.length] as string;
    const record = { id: `BENCH-${i}`, aliases: [`CVE-2099-${i}`], severity: [{ type: "CVSS_V3", score: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H" }], affected: [{ package: { ecosystem: "Debian:12", name }, ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: `0.${i}-1` }] }] }] };
    await writeFile(join(dir, `BENCH-${i}.json`), JSON.stringify(record));
  }
  const sbom = join(outDir, `${outDir.split("/").at(-1) ?? ""}.cdx.json`);
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) samples.push(await timed(() => execa(join(ROOT, "bin", "bronze"), ["vuln", "scan", "--sbom", sbom, "--advisories", dir], { reject: false })));
  const components = sbomComponents(sbom, JSON.parse(await readFile(sbom, "utf8")) as Record<string, unknown>);
  const advisories = await readAdvisories(dir);
  const naive = () => Promise.resolve(components.flatMap((c) => advisories.filter((a) => affectedBy(a, c))));
  const indexed = () => Promise.resolve(gate(components, advisories, [], "high"));
  const matching = await pair(`matching ${components.length} components with ${advisories.length} advisories: indexed by package vs every pair`, "<= 1.0", naive, indexed);
  return [{ name: `bronze vuln scan of ${sbom.split("/").at(-1) ?? ""} against 4000 advisories (read, parse, match)`, unit: "ms", value: stats(samples), goal: "report" }, matching];
}

/** The new package set: crun (and what it links) and util-linux. */
const PACKAGE_SET = ["crun", "util-linux"];

/**
 * The package set, cold (a cache of its own, the sources linked in from the machine's cache so no download
 * is timed): the step graph's wall time with one job per core against the sum of the packages' own build
 * times in the same run (what a serial build would take); then the same set again on that cache (a no-op:
 * every package found and verified), against the cold build.
 */
async function packageSetFigures(scratch: string): Promise<Figure[]> {
  const samples: number[] = [];
  const sums: number[] = [];
  const noops: number[] = [];
  let count = 0;
  for (let i = 0; i < RUNS; i++) {
    const cache = join(scratch, `pkg-cache-${i}`);
    await rm(cache, { recursive: true, force: true });
    await mkdir(cache, { recursive: true });
    await execa("cp", ["-al", join(ROOT, ".cache", "bronze", "sources"), join(cache, "sources")]);
    const ctx = { ...createContext(ROOT, 0, cache), workDir: join(scratch, `pkg-work-${i}`) };
    ctx.logDir = join(ctx.workDir, "logs");
    let sum = 0;
    count = 0;
    samples.push(await timed(() => buildPackageSet(PACKAGE_SET, HOST_ARCH, ctx, undefined, (_a, seconds) => { sum += seconds * 1000; count++; })));
    sums.push(sum);
    noops.push(await timed(() => buildPackageSet(PACKAGE_SET, HOST_ARCH, { ...ctx, ran: [], served: [] })));
    await rm(cache, { recursive: true, force: true });
  }
  const ratios = samples.map((s, i) => s / (sums[i] || 1));
  const set = `${PACKAGE_SET.join(" and ")} with the ${count - PACKAGE_SET.length} packages they need`;
  return [
    { name: `cold build of ${set}: the graph's wall time (jobs = cores) vs the sum of their build times`, unit: "ms", value: stats(samples), baseline: stats(sums), ratio: stats(ratios), goal: "< 1.0" },
    { name: `no-op rebuild of ${set} (every entry found and verified) vs their cold build`, unit: "ms", value: stats(noops), baseline: stats(samples), ratio: stats(noops.map((n, i) => n / (samples[i] || 1))), goal: "report" },
  ];
}

type Group = () => Promise<(Figure | undefined)[]>;
const bothProfiles = async (figure: (profile: string) => Promise<Figure | undefined>) => [await figure("minimal"), await figure("default")];
const scratch = join(tmpdir(), `bronze-bench-${process.pid}`);

/** The figures by group, in the order they run; BENCH_ONLY=rootfs,push runs those groups alone. */
const GROUPS: Record<string, Group> = {
  cpio: async () => [await cpioPair(scratch)],
  uki: async () => [await ukiPair(scratch, join(ROOT, "_out/minimal")), await withImage("default", (out) => ukiPair(scratch, out))],
  rootfs: async () => [await squashfsPair(scratch)],
  noop: async () => [...(await bothProfiles(noopRebuild)), ...(await bothProfiles(noopCli))],
  boot: async () => [...(await bothProfiles(bootFigure)), ...((await withImage("default", (out) => bootFloorFigures(scratch, out))) ?? [])],
  media: async () => (await withImage("default", (out) => mediaFigures(scratch, out))) ?? [],
  push: async () => pushFigures(scratch, join(ROOT, "_out", (await withImage("default", () => Promise.resolve(true))) ? "default" : "minimal")),
  kernel: async () => (process.env.BENCH_KERNEL !== "0" ? [await kernelPair(scratch)] : []),
  seal: () => kernelSealFigures(scratch),
  args: () => bothProfiles((profile) => kernelArgsRebuild(scratch, profile)),
  extension: () => bothProfiles((profile) => addExtension(scratch, profile)),
  shared: async () => [await sharedCacheFigure(scratch)],
  vuln: async () => vulnFigures(scratch, join(ROOT, "_out", (await withImage("default", () => Promise.resolve(true))) ? "default" : "minimal")),
  sizes: () => sizes(),
  packages: () => packageSetFigures(scratch),
  arches: () => archFigures(ROOT, scratch),
};

const only = process.env.BENCH_ONLY?.split(",").filter(Boolean);
const unknown = only?.filter((g) => !(g in GROUPS)) ?? [];
if (unknown.length) {
  console.error(`BENCH_ONLY: no group ${unknown.join(", ")}; the groups: ${Object.keys(GROUPS).join(", ")}`);
  process.exit(2);
}
// the cold kernel pair alone (its minutes want a quiet machine) is written apart, into results-kernel.json
const resultsFile = only ? join(ROOT, "bench", `results-${only.join("-")}.json`) : join(ROOT, "bench", "results.json");
await mkdir(scratch, { recursive: true });
try {
  // the minimal image is the common input; build it if needed (cached after the first time)
  const minimal = await loadProfile(profilePath(ROOT, "minimal"));
  await buildProfile(minimal, createContext(ROOT, await sourceDateEpoch(ROOT)), await projectVersion(ROOT));
  const figures: Figure[] = [];
  for (const [name, group] of Object.entries(GROUPS)) {
    if (!only || only.includes(name)) figures.push(...(await group()).filter((f): f is Figure => f !== undefined));
  }
  await writeFile(resultsFile, JSON.stringify({ runs: RUNS, figures }, null, 2) + "\n");
  console.log(`bronze bench (${RUNS} runs each; ratios = ours / baseline, pair by pair)\n`);
  for (const f of figures) console.log(format(f));
  console.log(`\nwritten: ${relative(ROOT, resultsFile)}`);
} finally {
  await rm(scratch, { recursive: true, force: true });
}
