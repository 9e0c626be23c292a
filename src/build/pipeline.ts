import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Listr, PRESET_TIMESTAMP } from "listr2";
import { buildInitramfs, type InitramfsArtifact } from "../initramfs/build.ts";
import { buildKernel, type KernelArtifact } from "../kernel/build.ts";
import { removeLeftoverKeys } from "../kernel/signing-key.ts";
import type { SuppliedKey } from "../kernel/supplied-key.ts";
import { loadKernelSource } from "../kernel/source.ts";
import { buildPackage, type PackageArtifact } from "../pkgs/build.ts";
import { buildOrder, loadPackages } from "../pkgs/graph.ts";
import type { Profile } from "../profile/profile.ts";
import { buildRootfs, type RootfsArtifact, type RootfsSbom } from "../rootfs/build.ts";
import { imageSbom } from "../sbom/components.ts";
import { sbomFileNames } from "../sbom/model.ts";
import { osRelease } from "../rootfs/os-release.ts";
import { buildUki, type UkiArtifact } from "../uki/build.ts";
import { BOOTLOADER_PATH, STUB_PATH } from "../core/tools.ts";
import { sourceRevision } from "../core/epoch.ts";
import { installerImage, ociArch } from "../oci/installer.ts";
import { removeAbandoned } from "../core/ownership.ts";
import { displayPath } from "../core/yamlfile.ts";
import { hardeningArch, imageGate, imageSysctlText, kernelConfigGate, type HardeningPolicy, type HardeningReport } from "../harden/build-gate.ts";
import { loadExceptions } from "../harden/gate.ts";
import { signBootImages, type SecureBootSigner } from "../secureboot/signer.ts";
import type { BuildContext } from "./context.ts";
import { checkSizeBudget, describeOverrun, type SizeRecord } from "./size-budget.ts";
import { treeBytes } from "../core/tree-size.ts";
import { humanBytes, renderReport, type ReportInput } from "../report/html.ts";
import { readUkiSections } from "../uki/uki.ts";
import { BronzeError } from "../core/errors.ts";
import { describeData, describeFiles, manifestBytes, publish, type PublishedFile } from "./publish.ts";

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
}

/** Reviewed exceptions to the kernel hardening gate, relative to the project root. */
const EXCEPTIONS_FILE = "kernel/hardening/exceptions.yaml";

/** The path of the init binary inside the init package, copied to /init in the initramfs. */
const INIT_IN_PACKAGE = "usr/sbin/init";

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
  /** also write Secure Boot signed copies of the UKI and systemd-boot (uki.signed.efi, systemd-boot.signed.efi) */
  secureBootSigner?: SecureBootSigner;
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
  const wanted = buildOrder(defs, profile.packages, displayPath(profile.file));
  const order = wanted.filter((d) => d.kind === "userland");
  const kernelModules = wanted.filter((d) => d.kind === "kernel-module");
  const kernelSource = await loadKernelSource(join(ctx.projectRoot, "kernel"));
  const release = osRelease({ version, variant: profile.name });
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
  /** A listr2 task whose title says "(cached)" when the step ran nothing. */
  const timeline: ReportInput["timeline"] = [];
  /** A listr2 task whose title says "(cached)" when the step ran nothing; each one goes on the report's timeline. */
  const step = (title: string, work: () => Promise<void>, cacheable = true) => ({
    title,
    task: async (_: unknown, task: { title: string }) => {
      const before = ctx.ran.length;
      const start = Date.now();
      await work();
      const cached = cacheable && ctx.ran.length === before;
      timeline.push({ step: title, startMs: start - started, durationMs: Date.now() - start, cached });
      if (cached) task.title += " (cached)";
    },
  });

  const tasks = new Listr(
    [
      ...order.map((def) =>
        step(`package ${def.name} ${def.version}`, async () => {
          stages.packages.set(def.name, await buildPackage(def, stages.packages, ctx));
        }),
      ),
      step(`kernel ${kernelSource.version} (profile ${profile.kernelProfile})`, async () => {
        const spec = {
          arch: profile.arch,
          profile: profile.kernelProfile,
          extraConfig: profile.kernelExtraConfig,
          modules: kernelModules,
          signingKey: options.moduleSigningKey,
        };
        stages.kernel = await buildKernel(kernelSource, spec, ctx, kernelConfigGate(hardening));
      }),
      step("rootfs.sqsh", async () => {
        const inRoot = rootPackages();
        const kernel = must(stages.kernel, "kernel");
        stages.sbom = imageSbom({ profile: profile.name, version, arch: profile.arch, epoch: ctx.epoch, packages: inRoot, kernelSource, kernel, kernelModules });
        stages.rootfs = await buildRootfs(inRoot.map((p) => p.artifact), kernel, release, ctx, stages.sbom);
      }),
      step("initramfs", async () => {
        stages.initramfs = await buildInitramfs(initBinary(), must(stages.rootfs, "rootfs"), ctx);
      }),
      // not a cached step: it runs on every build, in milliseconds
      step(
        "hardening gate (kernel config, command line, sysctls)",
        async () => {
          stages.hardening = imageGate(hardening, {
            dotConfig: await readFile(must(stages.kernel, "kernel").config, "utf8"),
            cmdline: profile.cmdline,
            sysctl: await imageSysctlText(rootPackages().map((p) => p.artifact.dir)),
          });
        },
        false,
      ),
      step("UKI", async () => {
        const kernel = must(stages.kernel, "kernel");
        const initramfs = must(stages.initramfs, "initramfs");
        stages.uki = await buildUki({ stubPath: STUB_PATH, kernel, initramfs, osRelease: release, cmdline: profile.cmdline }, ctx);
      }),
    ],
    {
      concurrent: false,
      exitOnError: true,
      renderer: "default",
      fallbackRenderer: "simple",
      fallbackRendererCondition: useSimpleRenderer,
      fallbackRendererOptions: { timestamp: PRESET_TIMESTAMP },
      rendererOptions: { collapseSubtasks: false },
    },
  );
  await tasks.run();

  const kernel = must(stages.kernel, "kernel");
  const outDir = join(ctx.projectRoot, "_out", profile.name);
  const initramfs = must(stages.initramfs, "initramfs").image;
  const uki = must(stages.uki, "uki").image;
  const rootfs = must(stages.rootfs, "rootfs");
  const hardeningReport = must(stages.hardening, "hardening gate");
  const sbomNames = sbomFileNames(profile.name);
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
  const record = {
    profile: profile.name,
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
    secureBoot: options.secureBootSigner ? { signed: signedImages.map((f) => f.name), certificateSha256: options.secureBootSigner.certificateSha256 } : null,
    hardening: {
      rules: `${hardeningReport.rules.project} ${hardeningReport.rules.release}`,
      decisions: hardeningReport.decisions,
      ...hardeningReport.summary,
      report: "hardening.json",
    },
  };
  const hardeningJson = Buffer.from(`${JSON.stringify(hardeningReport, null, 2)}\n`);
  // the installer carries what boots and the manifest that describes it
  const installer = installerImage({
    arches: [
      {
        arch: profile.arch,
        files: [
          { name: "uki.efi", data: ukiData },
          { name: "vmlinuz", data: await readFile(kernel.image) },
          { name: "initramfs.cpio.zst", data: await readFile(initramfs) },
          { name: "systemd-boot.efi", data: bootloaderData },
          ...signedImages,
          { name: sbomNames.spdx, data: await readFile(rootfs.spdx) },
          { name: sbomNames.cyclonedx, data: await readFile(rootfs.cyclonedx) },
          { name: "hardening.json", data: hardeningJson },
          { name: "manifest.json", data: manifestBytes(record, [...bootDescribed, ...describeData(signedImages)]) },
        ],
      },
    ],
    epoch: ctx.epoch,
    version,
    revision: await sourceRevision(ctx.projectRoot),
    source: process.env.BRONZE_SOURCE_URL,
    refName: version,
  });
  const contents = [...signedImages, { name: "installer.oci.tar", data: installer.tar }, { name: "hardening.json", data: hardeningJson }];
  const artifactSizes = [...bootDescribed, ...describeData(contents)].map(({ name, size }) => ({ name, size }));
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
  // not under the size budget: its timings differ from build to build
  const report = {
    name: "report.html",
    data: Buffer.from(
      renderReport({
        profile: profile.name,
        version,
        kernelRelease: kernel.release,
        moduleCount: kernel.moduleCount,
        moduleSigningCertSha256: kernel.signingCertSha256,
        artifacts: artifactSizes,
        breakdowns: await sizeBreakdowns(ukiData, initramfs, rootfs.image, initBinary(), weights),
        timeline,
        hardening: { rules: record.hardening.rules, decisions: hardeningReport.decisions, summary: hardeningReport.summary, suppressed: hardeningReport.suppressed.map((x) => ({ option: x.option_name, reason: x.reason })) },
        sbom: must(stages.sbom, "sbom").components.map((c) => ({ name: c.name, version: c.version, license: c.license, kind: c.kind, purl: c.purl })),
      }),
    ),
  };
  const files = await publish(outDir, {
    copies: bootFiles,
    contents: [...contents, report, ...installer.files.map((f) => ({ name: `installer/${f.path}`, data: f.data }))],
    manifest: {
      ...record,
      installer: {
        layout: "installer",
        tag: version,
        indexDigest: installer.index.descriptor.digest,
        manifests: installer.images.map((i) => ({ architecture: ociArch(profile.arch), digest: i.manifest.descriptor.digest })),
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
