import { readFile } from "node:fs/promises";
import type { InstallerContent } from "../disk/image.ts";
import { join } from "node:path";
import { Listr } from "listr2";
import { appendLayers, buildInitramfs, type InitramfsArtifact } from "../initramfs/build.ts";
import { buildKernel, type KernelArtifact } from "../kernel/build.ts";
import { removeLeftoverKeys } from "../kernel/signing-key.ts";
import type { SuppliedKey } from "../kernel/supplied-key.ts";
import { loadKernelSource } from "../kernel/source.ts";
import { buildPackage, type PackageArtifact } from "../pkgs/build.ts";
import { buildOrder, loadPackages } from "../pkgs/graph.ts";
import type { PackageDef } from "../pkgs/schema.ts";
import { enforceExtensionPolicy, extensionLayer, extensionPart, extensionRecord, imageExtension, loadTreeExtension, modulesIndexLayer, pullExtension, treeExtensionImage, treeExtension, type LayerArtifact, type ResolvedExtension, type TreeExtension } from "../extensions/assemble.ts";
import { loadTrustedKey } from "../extensions/signature.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { Reference } from "../registry/reference.ts";
import type { Output, Profile } from "../profile/profile.ts";
import { buildRootfs, imagePaths, type RootfsArtifact, type RootfsSbom } from "../rootfs/build.ts";
import { imageSbom } from "../sbom/components.ts";
import { extensionSbomFileNames, sbomFileNames } from "../sbom/model.ts";
import { extensionsSbom } from "../sbom/extensions.ts";
import { spdxDocument } from "../sbom/spdx.ts";
import { cycloneDxDocument } from "../sbom/cyclonedx.ts";
import { osRelease } from "../rootfs/os-release.ts";
import { buildUki, type UkiArtifact } from "../uki/build.ts";
import { BOOTLOADER_PATH, STUB_PATH } from "../core/tools.ts";
import { sourceRevision } from "../core/epoch.ts";
import { ociArch, profileTag } from "../oci/installer.ts";
import { buildInstaller } from "../installer/build.ts";
import { removeAbandoned } from "../core/ownership.ts";
import { displayPath } from "../core/yamlfile.ts";
import { hardeningArch, imageGate, imageSysctlText, kernelConfigGate, type HardeningPolicy, type HardeningReport } from "../harden/build-gate.ts";
import { loadExceptions } from "../harden/gate.ts";
import { signBootImages, type SecureBootSigner } from "../secureboot/signer.ts";
import type { BuildContext } from "./context.ts";
import { checkSizeBudget, describeOverrun, type SizeRecord } from "./size-budget.ts";
import { treeBytes } from "../core/tree-size.ts";
import { sha256File } from "../core/hash.ts";
import { humanBytes, renderReport, type ReportInput } from "../report/html.ts";
import { readUkiSections } from "../uki/uki.ts";
import { BronzeError, EXIT_FAILURE, EXIT_USAGE, InputError } from "../core/errors.ts";
import { DEFAULT_DISK_SIZE } from "../disk/sizes.ts";
import { JobBudget, runGraph, type GraphEvents, type GraphNode, type NodeOutcome } from "./graph.ts";
import { describeData, describeFiles, manifestBytes, publish, stagingDir, type PublishedFile } from "./publish.ts";

export interface BuildResult {
  profile: Profile;
  outDir: string;
  files: PublishedFile[];
  kernel: KernelArtifact;
  packages: PackageArtifact[];
  /** what the rootfs step was given to write the SBOM */
  sbom: RootfsSbom;
  hardening: HardeningReport;
  /** steps that ran; empty when everything came from the cache */
  ran: string[];
  durationMs: number;
}

interface Stages {
  packages: Map<string, PackageArtifact>;
  kernel?: KernelArtifact;
  rootfs?: RootfsArtifact;
  sbom?: RootfsSbom;
  initramfs?: InitramfsArtifact;
  uki?: UkiArtifact;
  hardening?: HardeningReport;
  extensions?: ResolvedExtension[];
  layers?: LayerArtifact[];
}

/** Reviewed exceptions to the kernel hardening gate, relative to the project root. */
const EXCEPTIONS_FILE = "kernel/hardening/exceptions.yaml";

/** The path of the init binary inside the init package, copied to /init in the initramfs. */
const INIT_IN_PACKAGE = "usr/sbin/init";

interface StepNode extends GraphNode {
  title: string;
}

/** What went wrong in a graph run: every failed step, then what did not run because of them. */
function failureReport(nodes: readonly StepNode[], outcomes: ReadonlyMap<string, NodeOutcome>): BronzeError | undefined {
  const failed = nodes.filter((n) => outcomes.get(n.id)?.status === "failed");
  if (failed.length === 0) return undefined;
  const errorOf = (n: StepNode) => (outcomes.get(n.id) as { error: unknown }).error;
  if (failed.length === 1 && errorOf(failed[0]!) instanceof BronzeError) return errorOf(failed[0]!) as BronzeError;
  const blocked = nodes.filter((n) => outcomes.get(n.id)?.status === "blocked").map((n) => n.title);
  const lines = failed.map((n) => {
    const error = errorOf(n);
    return `--- ${n.title} ---\n${error instanceof Error ? error.message : String(error)}`;
  });
  const allInput = failed.every((n) => errorOf(n) instanceof InputError);
  return new BronzeError(
    `${failed.length} build steps failed: ${failed.map((n) => n.title).join(", ")}${blocked.length ? `; not run because of them: ${blocked.join(", ")}` : ""}\n${lines.join("\n")}`,
    allInput ? EXIT_USAGE : EXIT_FAILURE,
  );
}

const clock = () => new Date().toISOString().slice(11, 19);

/** One line per event, when it happens: what CI logs show (listr2 would print every step as started at once). */
function lineReporter(nodes: readonly StepNode[], cachedSteps: ReadonlySet<string>): GraphEvents {
  const title = (id: string) => nodes.find((n) => n.id === id)?.title ?? id;
  const began = new Map<string, number>();
  return {
    started: (id) => {
      began.set(id, Date.now());
      console.log(`❯ [${clock()}] ${title(id)}`);
    },
    settled: (id, outcome) => {
      const seconds = `${((Date.now() - (began.get(id) ?? Date.now())) / 1000).toFixed(1)} s`;
      if (outcome.status === "ok") console.log(`✔ [${clock()}] ${title(id)}${cachedSteps.has(id) ? " (cached)" : ""} ${seconds}`);
      else if (outcome.status === "failed") console.log(`✖ [${clock()}] ${title(id)} failed after ${seconds}`);
      else console.log(`↓ [${clock()}] ${title(id)} not run: needs ${outcome.by.map(title).join(", ")}, which failed`);
    },
  };
}

/** On a terminal, listr2 shows the steps of the graph with their state as they run. */
async function listrView(nodes: readonly StepNode[], running: ReadonlyMap<string, Promise<NodeOutcome>>, cachedSteps: ReadonlySet<string>): Promise<void> {
  const tasks = new Listr(
    nodes.map((n) => ({
      title: n.title,
      task: async (_: unknown, task: { title: string; skip: (message: string) => void }) => {
        const outcome = await running.get(n.id)!;
        if (outcome.status === "failed") throw outcome.error;
        if (outcome.status === "blocked") task.skip(`not run: needs ${outcome.by.join(", ")}, which failed`);
        else if (cachedSteps.has(n.id)) task.title += " (cached)";
      },
    })),
    { concurrent: true, exitOnError: false, renderer: "default", rendererOptions: { collapseSubtasks: false, collapseErrors: false } },
  );
  await tasks.run();
}

/**
 * Runs the build graph within the job budget: a step that fails does not stop the steps that do not
 * need it, and the build then reports every failure.
 */
async function runSteps(nodes: readonly StepNode[], budget: JobBudget, cachedSteps: ReadonlySet<string>): Promise<void> {
  const simple = useSimpleRenderer();
  const running = runGraph(nodes, budget, simple ? lineReporter(nodes, cachedSteps) : {});
  if (!simple) await listrView(nodes, running, cachedSteps);
  const outcomes = new Map<string, NodeOutcome>();
  for (const [id, outcome] of running) outcomes.set(id, await outcome);
  const failure = failureReport(nodes, outcomes);
  if (failure) throw failure;
}

/** Which output of a profile an artifact belongs to; the rest (manifest, SBOMs, rootfs, reports) is always published. */
function isPublished(outputs: readonly Output[], name: string): boolean {
  if (name === "uki.efi" || name === "uki.signed.efi") return outputs.includes("uki");
  if (name === "vmlinuz" || name === "initramfs.cpio.zst") return outputs.includes("kernel-initramfs");
  if (name === "installer.oci.tar" || name === "systemd-boot.signed.efi" || name.startsWith("installer/")) return outputs.includes("installer");
  return true;
}

/** The `disk` output: a raw GPT disk of the installer's boot files (as `bronze image disk` makes it), beside the output directory. */
async function diskOutput(content: InstallerContent, outDir: string): Promise<string> {
  const work = await stagingDir(outDir, "disk");
  const { writeDisk } = await import("../disk/image.ts");
  return (await writeDisk(content, join(work, "disk.raw"), DEFAULT_DISK_SIZE)).out;
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

/** SPDX and CycloneDX documents of the extensions an image layers over its base. */
function extensionSbomFiles(profile: Profile, version: string, ctx: BuildContext, extensions: readonly ResolvedExtension[]): { name: string; data: Buffer }[] {
  const input = extensionsSbom(
    { name: profile.name, base: profile.baseImage, version, arch: profile.arch, epoch: ctx.epoch, toolVersion: version },
    extensions.map((e) => extensionPart(e, ctx.projectRoot)),
  );
  const names = extensionSbomFileNames(profile.name);
  return [
    { name: names.spdx, data: Buffer.from(spdxDocument(input)) },
    { name: names.cyclonedx, data: Buffer.from(cycloneDxDocument(input)) },
  ];
}

function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`internal: ${what} was not built`);
  return value;
}

export function useSimpleRenderer(): boolean {
  return !process.stdout.isTTY || Boolean(process.env.CI);
}

/** Choices of one build that are not part of the profile. */
export interface BuildOptions {
  /** sign modules with the user's key instead of an ephemeral one */
  moduleSigningKey?: SuppliedKey;
  /** publish even when an artifact grew past the profile's size budget (the new sizes become the reference) */
  acceptSizeGrowth?: boolean;
  /** build steps that may run at once (default: the number of cores) */
  jobs?: number;
  /** also write Secure Boot signed copies of the UKI and systemd-boot (uki.signed.efi, systemd-boot.signed.efi) */
  secureBootSigner?: SecureBootSigner;
  /** how to reach a registry, for extensions named by registry reference */
  connect?: (ref: Reference) => Promise<RegistryClient>;
}

/** What each component installs, in bytes: each package, the kernel image and its modules. */
async function componentSizes(packages: readonly PackageArtifact[], kernel: KernelArtifact): Promise<{ packages: Record<string, number>; kernelImage: number; kernelModules: number }> {
  const sizes: Record<string, number> = {};
  for (const p of packages) sizes[p.name] = await treeBytes(p.dir);
  return { packages: sizes, kernelImage: await treeBytes(kernel.image), kernelModules: await treeBytes(kernel.modulesRoot) };
}

/** The report's treemaps: the UKI by section, the initramfs by file, the rootfs by component (installed bytes). */
async function sizeBreakdowns(uki: Buffer, initramfs: string, rootfs: string, init: string, weights: Awaited<ReturnType<typeof componentSizes>>): Promise<ReportInput["breakdowns"]> {
  const sections = readUkiSections(uki);
  const ours: Record<string, string> = { ".linux": "kernel (.linux)", ".initrd": "initramfs (.initrd)", ".osrel": "metadata", ".cmdline": "metadata", ".uname": "metadata" };
  const ukiItems = new Map<string, number>();
  for (const section of sections) {
    const label = ours[section.name] ?? "systemd-stub";
    ukiItems.set(label, (ukiItems.get(label) ?? 0) + section.data.length);
  }
  return [
    { title: "UKI", note: "by section", items: [...ukiItems].map(([label, value]) => ({ label, value })) },
    { title: "initramfs", note: `uncompressed; ${humanBytes(await treeBytes(initramfs))} with zstd`, items: [{ label: "/init", value: await treeBytes(init) }, { label: "/rootfs.sqsh", value: await treeBytes(rootfs) }] },
    {
      title: "rootfs",
      note: "installed bytes by package, before SquashFS compression",
      items: [...Object.entries(weights.packages).map(([label, value]) => ({ label, value })), { label: "kernel modules", value: weights.kernelModules }],
    },
  ];
}

/** The sizes recorded by the previous build of this profile, if there is one to compare with. */
async function previousSizes(outDir: string): Promise<SizeRecord | undefined> {
  const text = await readFile(join(outDir, "manifest.json"), "utf8").catch(() => undefined);
  if (!text) return undefined;
  const manifest = JSON.parse(text) as { artifacts?: { name: string; size: number }[]; sizes?: { components?: Record<string, number> } };
  if (!manifest.artifacts) return undefined;
  return { artifacts: Object.fromEntries(manifest.artifacts.map((a) => [a.name, a.size])), components: manifest.sizes?.components ?? {} };
}

/** Builds a profile: packages, kernel, rootfs, initramfs, UKI; then publishes to _out/<profile>. */
export async function buildProfile(profile: Profile, ctx: BuildContext, version: string, options: BuildOptions = {}): Promise<BuildResult> {
  const started = Date.now();
  const defs = await loadPackages(join(ctx.projectRoot, "pkgs"));
  const treeExtensions = new Map<string, TreeExtension>();
  for (const ref of profile.extensions) if (ref.kind === "build") treeExtensions.set(ref.dir, await loadTreeExtension(ref.dir));
  const extensionModules = profile.kernelExtensionModules.map((name) => kernelModulePackage(defs, name, profile));
  const extensionPackages = checkTreeExtensions([...treeExtensions.values()], defs, profile);
  const wanted = buildOrder(defs, [...profile.packages, ...extensionPackages], displayPath(profile.file));
  const order = wanted.filter((d) => d.kind === "userland");
  const kernelModules = wanted.filter((d) => d.kind === "kernel-module");
  const trustedKeys = await Promise.all(profile.trustedKeys.map(async (path) => ({ path, key: await loadTrustedKey(path) })));
  const kernelSource = await loadKernelSource(join(ctx.projectRoot, "kernel"));
  // the base's rootfs and initramfs, never re-packed for a custom image: they name the base
  const release = osRelease({ version, variant: profile.baseImage });
  const stages: Stages = { packages: new Map() };
  const hardening: HardeningPolicy = {
    arch: hardeningArch(profile.arch),
    kernelProfile: profile.kernelProfile,
    decisions: profile.hardeningDecisions,
    exceptions: await loadExceptions(join(ctx.projectRoot, EXCEPTIONS_FILE), EXCEPTIONS_FILE),
  };
  const initBinary = () => join(must(stages.packages.get("init"), "package init").dir, INIT_IN_PACKAGE);
  const rootPackages = () => order.filter((d) => profile.packages.includes(d.name)).map((def) => ({ def, artifact: must(stages.packages.get(def.name), `package ${def.name}`) }));
  // what builds that were killed outright left behind: their keys first, then their trees
  await removeLeftoverKeys();
  await removeAbandoned(join(ctx.workDir, "kernel"));
  await ctx.compileCache.removeAbandoned();
  const timeline: ReportInput["timeline"] = [];
  const cachedSteps = new Set<string>();
  const packageNode = (name: string) => `package ${name}`;
  const userland = order.map((d) => packageNode(d.name));
  /** A graph node; `ranAs` is the name the step records in ctx.ran when it runs (not served from the cache). */
  const node = (id: string, title: string, deps: readonly string[], ranAs: string | undefined, work: () => Promise<void>): StepNode => ({
    id,
    title,
    deps,
    run: async () => {
      const start = Date.now();
      await work();
      const cached = ranAs !== undefined && !ctx.ran.includes(ranAs);
      timeline.push({ step: title, startMs: start - started, durationMs: Date.now() - start, cached });
      if (cached) cachedSteps.add(id);
    },
  });
  const kernelTitle = `kernel ${kernelSource.version} (profile ${profile.kernelProfile})`;
  const nodes: StepNode[] = [
    ...order.map((def) =>
      node(packageNode(def.name), `package ${def.name} ${def.version}`, def.dependencies.map(packageNode), packageNode(def.name), async () => {
        stages.packages.set(def.name, await buildPackage(def, stages.packages, ctx));
      }),
    ),
    node("kernel", kernelTitle, [], `kernel ${profile.kernelProfile}`, async () => {
      const spec = {
        arch: profile.arch,
        profile: profile.kernelProfile,
        extraConfig: profile.kernelExtraConfig,
        modules: kernelModules,
        extensionModules,
        signingKey: options.moduleSigningKey,
      };
      stages.kernel = await buildKernel(kernelSource, spec, ctx, kernelConfigGate(hardening));
    }),
    node("rootfs", "rootfs.sqsh", [...userland, "kernel"], "rootfs", async () => {
      const inRoot = rootPackages();
      const kernel = must(stages.kernel, "kernel");
      const modules = kernelModules.map((def) => ({ def, sourceDigests: kernel.moduleSources[def.name] ?? [] }));
      stages.sbom = imageSbom({ profile: profile.baseImage, version, arch: profile.arch, epoch: ctx.epoch, packages: inRoot, kernelSource, kernel, kernelModules: modules, projectRoot: ctx.projectRoot });
      stages.rootfs = await buildRootfs(inRoot.map((p) => p.artifact), kernel, release, ctx, stages.sbom);
    }),
    ...(profile.extensions.length
      ? [
          node("extensions", `extensions (${profile.extensions.length}): verify, check, layer`, ["rootfs", "kernel", ...extensionPackages.map(packageNode)], undefined, async () => {
            const kernel = must(stages.kernel, "kernel");
            const resolved: ResolvedExtension[] = [];
            for (const ref of profile.extensions) {
              if (ref.kind === "build") resolved.push(await treeExtension(must(treeExtensions.get(ref.dir), ref.dir), stages.packages, kernel));
              else if (ref.kind === "image") resolved.push(await imageExtension(ref, trustedKeys, profile.allowUnsigned));
              else {
                if (!options.connect) throw new InputError(`extension ${ref.reference}: this build has no registry connection (bronze build makes one)`);
                const source = await pullExtension(ref, options.connect, ctx.cacheDir);
                resolved.push(await imageExtension({ source, digest: ref.digest, reference: ref.reference }, trustedKeys, profile.allowUnsigned));
              }
            }
            await enforceExtensionPolicy(resolved, { osVersion: version, baseFiles: new Set(await imagePaths(must(stages.rootfs, "rootfs").image)), kernel });
            const layers = await Promise.all(resolved.map((ext, i) => extensionLayer(ext, i, ctx)));
            const index = await modulesIndexLayer(kernel, resolved, ctx);
            stages.extensions = resolved;
            stages.layers = index ? [...layers, index] : layers;
          }),
        ]
      : []),
    node("initramfs", "initramfs", ["rootfs", packageNode("init"), ...(profile.extensions.length ? ["extensions"] : [])], "initramfs", async () => {
      const base = await buildInitramfs(initBinary(), must(stages.rootfs, "rootfs"), ctx);
      stages.initramfs = stages.layers?.length ? await appendLayers(base, stages.layers, ctx) : base;
    }),
    // not a cached step: it runs on every build, in milliseconds
    node("hardening", "hardening gate (kernel config, command line, sysctls)", [...userland, "kernel"], undefined, async () => {
      stages.hardening = imageGate(hardening, {
        dotConfig: await readFile(must(stages.kernel, "kernel").config, "utf8"),
        cmdline: profile.cmdline,
        sysctl: await imageSysctlText(rootPackages().map((p) => p.artifact.dir)),
      });
    }),
    node("uki", "UKI", ["kernel", "initramfs", "hardening"], "uki", async () => {
      const kernel = must(stages.kernel, "kernel");
      const initramfs = must(stages.initramfs, "initramfs");
      stages.uki = await buildUki({ stubPath: STUB_PATH, kernel, initramfs, osRelease: release, cmdline: profile.cmdline }, ctx);
    }),
  ];
  await runSteps(nodes, new JobBudget(options.jobs ?? ctx.jobs), cachedSteps);

  const kernel = must(stages.kernel, "kernel");
  const outDir = join(ctx.projectRoot, "_out", profile.name);
  const initramfs = must(stages.initramfs, "initramfs").image;
  const uki = must(stages.uki, "uki").image;
  const rootfs = must(stages.rootfs, "rootfs");
  const hardeningReport = must(stages.hardening, "hardening gate");
  const sbomNames = sbomFileNames(profile.baseImage);
  const bootFiles = [
    { name: "rootfs.sqsh", from: rootfs.image },
    { name: "initramfs.cpio.zst", from: initramfs },
    { name: "vmlinuz", from: kernel.image },
    { name: "uki.efi", from: uki },
    { name: "module-signing.der", from: kernel.signingCert },
    { name: sbomNames.spdx, from: rootfs.spdx },
    { name: sbomNames.cyclonedx, from: rootfs.cyclonedx },
  ];
  const ukiData = await readFile(uki);
  const bootloaderData = await readFile(BOOTLOADER_PATH);
  // signed on every build (milliseconds) and never cached: the key stays in memory
  const signedImages = options.secureBootSigner
    ? signBootImages(options.secureBootSigner, [
        { name: "uki.efi", data: ukiData },
        { name: "systemd-boot.efi", data: bootloaderData },
      ])
    : [];
  // hashed once: the installer's manifest, the size budget and the report all list them
  const bootDescribed = await describeFiles(bootFiles);
  const weights = await componentSizes(rootPackages().map((p) => p.artifact), kernel);
  // each layer hashed once: the extensions and the layers list both name it
  const layerRecords = await Promise.all((stages.layers ?? []).map(async (l) => ({ name: l.name, sha256: await sha256File(l.image), size: await treeBytes(l.image) })));
  const record = {
    profile: profile.name,
    profileId: profile.id,
    ...(profile.base ? { base: profile.base } : {}),
    outputs: profile.outputs,
    version,
    sourceDateEpoch: ctx.epoch,
    cmdline: profile.cmdline,
    kernel: {
      version: kernelSource.version,
      release: kernel.release,
      sourceSha256: kernelSource.pin.sha256,
      moduleCount: kernel.moduleCount,
      moduleSigningKey: kernel.signingKey,
      moduleSigningCertSha256: kernel.signingCertSha256,
      // out-of-tree module packages: built, signed and cached with the kernel
      modulePackages: kernelModules.map((d) => ({ name: d.name, version: d.version, license: d.license })),
    },
    packages: [...stages.packages.values()].map((p) => ({ name: p.name, version: p.version, license: p.license, key: p.key, sources: p.sources })),
    sizes: { components: { ...weights.packages, [`kernel ${kernel.profile}`]: weights.kernelImage + weights.kernelModules } },
    ...(stages.extensions ? { extensions: stages.extensions.map((e, i) => extensionRecord(e, must(layerRecords[i], "extension layer"), ctx.projectRoot)) } : {}),
    ...(layerRecords.length ? { layers: layerRecords } : {}),
    secureBoot: options.secureBootSigner ? { signed: signedImages.map((f) => f.name), certificateSha256: options.secureBootSigner.certificateSha256 } : null,
    hardening: {
      rules: `${hardeningReport.rules.project} ${hardeningReport.rules.release}`,
      decisions: hardeningReport.decisions,
      ...hardeningReport.summary,
      report: "hardening.json",
    },
  };
  const hardeningJson = Buffer.from(`${JSON.stringify(hardeningReport, null, 2)}\n`);
  // the base's SBOM is in its rootfs; what the extensions add has its own, published and in the installer
  const extensionSboms = stages.extensions ? extensionSbomFiles(profile, version, ctx, stages.extensions) : [];
  // the installer carries what boots and the manifest that describes it
  const described = new Map(bootDescribed.map((d) => [d.name, d]));
  const fromCache = (name: string, from: string) => ({ name, from, sha256: must(described.get(name), name).sha256 });
  const installer = await buildInstaller(
    {
      arches: [
        {
          arch: profile.arch,
          files: [
            fromCache("uki.efi", uki),
            fromCache("vmlinuz", kernel.image),
            fromCache("initramfs.cpio.zst", initramfs),
            { name: "systemd-boot.efi", data: bootloaderData },
            ...signedImages,
            fromCache(sbomNames.spdx, rootfs.spdx),
            fromCache(sbomNames.cyclonedx, rootfs.cyclonedx),
            { name: "hardening.json", data: hardeningJson },
            ...extensionSboms,
            { name: "manifest.json", data: manifestBytes(record, [...bootDescribed, ...describeData(signedImages)]) },
          ],
        },
      ],
      epoch: ctx.epoch,
      version,
      revision: await sourceRevision(ctx.projectRoot),
      source: process.env.BRONZE_SOURCE_URL,
      refName: version,
      profile: { name: profile.name, id: profile.id },
    },
    ctx,
  );
  // this tree's extensions as OCI images, to sign and publish for images on the same base build
  const treeImages = await Promise.all(
    (stages.extensions ?? []).filter((e) => e.origin.kind === "build").map(async (e) => ({ name: `extensions/${e.content.manifest.name}.oci.tar`, data: await treeExtensionImage(e, ctx.epoch) })),
  );
  const contents = [...signedImages, { name: "hardening.json", data: hardeningJson }, ...extensionSboms, ...treeImages];
  const installerTar = { name: "installer.oci.tar", size: installer.tarSize, sha256: installer.tarSha256 };
  const published = (file: { name: string }) => isPublished(profile.outputs, file.name);
  const artifactSizes = [...bootDescribed, installerTar, ...describeData(contents)].filter(published).map(({ name, size }) => ({ name, size }));
  if (profile.sizeBudgetPercent !== undefined && !options.acceptSizeGrowth) {
    const current: SizeRecord = {
      artifacts: Object.fromEntries(artifactSizes.map((a) => [a.name, a.size])),
      components: record.sizes.components,
    };
    const previous = await previousSizes(outDir);
    if (previous) {
      const verdict = checkSizeBudget(previous, current, profile.sizeBudgetPercent);
      if (verdict.overruns.length) throw new BronzeError(describeOverrun(verdict, profile.sizeBudgetPercent, displayPath(profile.file)));
    }
  }
  // not under the size budget nor in the manifest: its timings differ from build to build
  const report = {
    name: "report.html",
    unlisted: true,
    data: Buffer.from(
      renderReport({
        profile: profile.name,
        version,
        kernelRelease: kernel.release,
        moduleCount: kernel.moduleCount,
        moduleSigningCertSha256: kernel.signingCertSha256,
        artifacts: artifactSizes,
        breakdowns: await sizeBreakdowns(ukiData, initramfs, rootfs.image, initBinary(), weights),
        timeline: [...timeline].sort((a, b) => a.startMs - b.startMs),
        hardening: { rules: record.hardening.rules, decisions: hardeningReport.decisions, summary: hardeningReport.summary, suppressed: hardeningReport.suppressed.map((x) => ({ option: x.option_name, reason: x.reason })) },
        sbom: must(stages.sbom, "sbom").components.map((c) => ({ name: c.name, version: c.version, license: c.license, kind: c.kind, purl: c.purl })),
      }),
    ),
  };
  // what readInstaller would take from the installer: the signed boot files when there are any
  const signedData = (name: string) => signedImages.find((f) => f.name === name)?.data;
  const bootContent: InstallerContent = {
    version,
    profile: profile.name,
    epoch: ctx.epoch,
    uki: signedData("uki.signed.efi") ?? ukiData,
    bootloader: signedData("systemd-boot.signed.efi") ?? bootloaderData,
    signed: signedImages.length > 0,
  };
  const disk = profile.outputs.includes("disk") ? await diskOutput(bootContent, outDir) : undefined;
  const files = await publish(outDir, {
    // described above: their digests are not taken again
    copies: [...bootDescribed, { ...installerTar, from: installer.tar }, ...installer.layout.map((f) => ({ name: `installer/${f.path}`, from: f.from }))].filter(published),
    contents: [...contents, report].filter(published),
    moves: disk ? [{ name: "disk.raw", from: disk }] : [],
    manifest: {
      ...record,
      installer: {
        layout: "installer",
        tag: version,
        profileTag: profileTag(version, profile.id),
        indexDigest: installer.indexDigest,
        manifests: installer.manifestDigests.map((digest) => ({ architecture: ociArch(profile.arch), digest })),
      },
    },
  });
  return {
    profile,
    outDir,
    files,
    kernel,
    packages: [...stages.packages.values()],
    sbom: must(stages.sbom, "sbom"),
    hardening: hardeningReport,
    ran: [...ctx.ran],
    durationMs: Date.now() - started,
  };
}
