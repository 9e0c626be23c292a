import { readFile } from "node:fs/promises";
import type { InstallerContent } from "../disk/image.ts";
import { join } from "node:path";
import { kernelComponent, type KernelArtifact } from "../kernel/build.ts";
import { type PackageArtifact } from "../pkgs/build.ts";
import { extensionPart, extensionRecord, treeExtensionImage, type ResolvedExtension } from "../extensions/assemble.ts";
import type { Profile } from "../profile/profile.ts";
import { type RootfsArtifact, type RootfsSbom } from "../rootfs/build.ts";
import { extensionSbomFileNames, sbomFileNames } from "../sbom/model.ts";
import { extensionsSbom } from "../sbom/extensions.ts";
import { spdxDocument } from "../sbom/spdx.ts";
import { cycloneDxDocument } from "../sbom/cyclonedx.ts";
import { archNamed } from "../core/arch.ts";
import { sourceRevision } from "../core/epoch.ts";
import { profileTag } from "../oci/installer.ts";
import { buildInstaller, type InstallerArtifact } from "../installer/build.ts";
import { displayPath } from "../core/yamlfile.ts";
import { type HardeningReport } from "../harden/build-gate.ts";
import { signBootImages, type SecureBootSigner } from "../secureboot/signer.ts";
import type { PipelineContext } from "./context.ts";
import { checkSizeBudget, describeOverrun, type SizeRecord } from "./size-budget.ts";
import { treeBytes } from "../core/tree-size.ts";
import { sha256File } from "../core/hash.ts";
import { humanBytes, renderReport, type ReportInput } from "../report/html.ts";
import { readUkiSections } from "../uki/uki.ts";
import { BronzeError } from "../core/errors.ts";
import { DEFAULT_DISK_SIZE } from "../disk/sizes.ts";
import { planBuild, type BuildPlan } from "./plan.ts";
import { must, runStepGraph, type StepOptions, type StepResults } from "./steps.ts";
import { describeData, describeFiles, manifestBytes, publish, stagingDir, type CopiedFile, type PublishedFile } from "./publish.ts";
import { FILES, isPublished } from "../core/outputs.ts";

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


/** The UKI and systemd-boot as they boot, and their Secure Boot signed copies when a signer is given. */
interface BootImages {
  ukiData: Buffer;
  bootloaderData: Buffer;
  signedImages: { name: string; data: Buffer }[];
}

async function bootImages(profile: Profile, steps: StepResults, signer: SecureBootSigner | undefined): Promise<BootImages> {
  const ukiData = await readFile(steps.uki.image);
  const bootloaderData = await readFile(archNamed(profile.arch).bootloader);
  // signed on every build (milliseconds) and never cached: the key stays in memory
  const signedImages = signer
    ? signBootImages(signer, [
        { name: FILES.uki, data: ukiData },
        { name: FILES.bootloader, data: bootloaderData },
      ])
    : [];
  return { ukiData, bootloaderData, signedImages };
}

/** The `disk` output: a raw GPT disk of the installer's boot files (as `bronze image disk` makes it), beside the output directory. */
async function diskOutput(plan: BuildPlan, epoch: number, boot: BootImages, outDir: string): Promise<string> {
  // what readInstaller would take from the installer: the signed boot files when there are any
  const signedData = (name: string) => boot.signedImages.find((f) => f.name === name)?.data;
  const content: InstallerContent = {
    arch: archNamed(plan.profile.arch),
    version: plan.version,
    profile: plan.profile.name,
    epoch,
    uki: signedData(FILES.signedUki) ?? boot.ukiData,
    bootloader: signedData(FILES.signedBootloader) ?? boot.bootloaderData,
    signed: boot.signedImages.length > 0,
  };
  const work = await stagingDir(outDir, "disk");
  const { writeDisk } = await import("../disk/image.ts");
  return (await writeDisk(content, join(work, FILES.disk), DEFAULT_DISK_SIZE)).out;
}


/** SPDX and CycloneDX documents of the extensions an image layers over its base. */
function extensionSbomFiles(profile: Profile, version: string, ctx: PipelineContext, extensions: readonly ResolvedExtension[]): { name: string; data: Buffer }[] {
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


/** Choices of one build that are not part of the profile. */
export interface BuildOptions extends StepOptions {
  /** publish even when an artifact grew past the profile's size budget (the new sizes become the reference) */
  acceptSizeGrowth?: boolean;
  /** also write Secure Boot signed copies of the UKI and systemd-boot (uki.signed.efi, systemd-boot.signed.efi) */
  secureBootSigner?: SecureBootSigner;
}

/** What each component puts in the image, in bytes: each package and the kernel's modules in the rootfs, the kernel image. */
interface ComponentSizes {
  packages: Record<string, number>;
  kernelImage: number;
  kernelModules: number;
}

async function componentSizes(packages: readonly PackageArtifact[], kernel: KernelArtifact, rootfs: RootfsArtifact): Promise<ComponentSizes> {
  const installed = (owner: string) => rootfs.installedBytes[owner] ?? 0;
  const sizes = Object.fromEntries(packages.map((p) => [p.name, installed(p.name)]));
  return { packages: sizes, kernelImage: await treeBytes(kernel.image), kernelModules: installed(kernelComponent(kernel.profile)) };
}

/** The report's treemaps: the UKI by section, the initramfs by file, the rootfs by component (installed bytes). */
async function sizeBreakdowns(uki: Buffer, initramfs: string, rootfs: string, init: string, weights: ComponentSizes): Promise<ReportInput["breakdowns"]> {
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
      note: "bytes each package installed in the image, before SquashFS compression",
      items: [...Object.entries(weights.packages).map(([label, value]) => ({ label, value })), { label: "kernel modules", value: weights.kernelModules }],
    },
  ];
}

/** The sizes recorded by the previous build of this profile, if there is one to compare with. */
async function previousSizes(outDir: string): Promise<SizeRecord | undefined> {
  const text = await readFile(join(outDir, FILES.manifest), "utf8").catch(() => undefined);
  if (!text) return undefined;
  const manifest = JSON.parse(text) as { artifacts?: { name: string; size: number }[]; sizes?: { components?: Record<string, number> } };
  if (!manifest.artifacts) return undefined;
  return { artifacts: Object.fromEntries(manifest.artifacts.map((a) => [a.name, a.size])), components: manifest.sizes?.components ?? {} };
}

/** The build record: what the image is made of, as manifest.json (and the installer's copy of it) tells it. */
function manifestRecord(
  plan: BuildPlan,
  steps: StepResults,
  ctx: PipelineContext,
  parts: { weights: ComponentSizes; layerRecords: { name: string; sha256: string; size: number }[]; signedImages: readonly { name: string }[]; signer?: SecureBootSigner },
) {
  return {
    profile: plan.profile.name,
    profileId: plan.profile.id,
    ...(plan.profile.base ? { base: plan.profile.base } : {}),
    outputs: plan.profile.outputs,
    version: plan.version,
    sourceDateEpoch: ctx.epoch,
    cmdline: plan.profile.cmdline,
    kernel: {
      version: plan.kernelSource.version,
      release: steps.kernel.release,
      sourceSha256: plan.kernelSource.pin.sha256,
      moduleCount: steps.kernel.moduleCount,
      moduleSigningKey: steps.kernel.signingKey,
      moduleSigningCertSha256: steps.kernel.signingCertSha256,
      // out-of-tree module packages: built, signed and cached with the kernel
      modulePackages: plan.kernelModules.map((d) => ({ name: d.name, version: d.version, license: d.license })),
    },
    packages: [...steps.packages.values()].map((p) => ({ name: p.name, version: p.version, license: p.license, key: p.key, sources: p.sources })),
    sizes: { components: { ...parts.weights.packages, [kernelComponent(steps.kernel.profile)]: parts.weights.kernelImage + parts.weights.kernelModules } },
    ...(steps.extensions ? { extensions: steps.extensions.map((e, i) => extensionRecord(e, must(parts.layerRecords[i], "extension layer"), ctx.projectRoot)) } : {}),
    ...(parts.layerRecords.length ? { layers: parts.layerRecords } : {}),
    secureBoot: parts.signer ? { signed: parts.signedImages.map((f) => f.name), certificateSha256: parts.signer.certificateSha256 } : null,
    hardening: {
      rules: `${steps.hardening.rules.project} ${steps.hardening.rules.release}`,
      decisions: steps.hardening.decisions,
      ...steps.hardening.summary,
      report: FILES.hardening,
    },
  };
}

/** Fails the build when an artifact or component grew past the profile's size budget over its previous build. */
async function enforceSizeBudget(profile: Profile, outDir: string, current: SizeRecord): Promise<void> {
  if (profile.sizeBudgetPercent === undefined) return;
  const previous = await previousSizes(outDir);
  if (!previous) return;
  const verdict = checkSizeBudget(previous, current, profile.sizeBudgetPercent);
  if (verdict.overruns.length) throw new BronzeError(describeOverrun(verdict, profile.sizeBudgetPercent, displayPath(profile.file)));
}

/** The installer image: what boots, the SBOMs, the hardening report and the manifest that describes them. */
async function installerStep(
  plan: BuildPlan,
  steps: StepResults,
  ctx: PipelineContext,
  files: {
    bootDescribed: readonly Required<CopiedFile>[];
    bootloaderData: Buffer;
    signedImages: readonly { name: string; data: Buffer }[];
    hardeningJson: Buffer;
    extensionSboms: readonly { name: string; data: Buffer }[];
    record: Record<string, unknown>;
  },
): Promise<InstallerArtifact> {
  const sbomNames = sbomFileNames(plan.profile.baseImage);
  // the installer carries what boots and the manifest that describes it
  const described = new Map(files.bootDescribed.map((d) => [d.name, d]));
  const fromCache = (name: string, from: string) => ({ name, from, sha256: must(described.get(name), name).sha256 });
  return buildInstaller(
    {
      arches: [
        {
          arch: plan.profile.arch,
          files: [
            fromCache(FILES.uki, steps.uki.image),
            fromCache(FILES.kernel, steps.kernel.image),
            fromCache(FILES.initramfs, steps.initramfs.image),
            { name: FILES.bootloader, data: files.bootloaderData },
            ...files.signedImages,
            fromCache(sbomNames.spdx, steps.rootfs.spdx),
            fromCache(sbomNames.cyclonedx, steps.rootfs.cyclonedx),
            { name: FILES.hardening, data: files.hardeningJson },
            ...files.extensionSboms,
            { name: FILES.manifest, data: manifestBytes(files.record, [...files.bootDescribed, ...describeData(files.signedImages)]) },
          ],
        },
      ],
      epoch: ctx.epoch,
      version: plan.version,
      revision: await sourceRevision(ctx.projectRoot),
      source: process.env.BRONZE_SOURCE_URL,
      refName: plan.version,
      profile: { name: plan.profile.name, id: plan.profile.id },
    },
    ctx,
  );
}

/** report.html: sizes, their breakdowns, the timeline, the hardening verdicts and the SBOM's components. */
async function reportFile(
  plan: BuildPlan,
  steps: StepResults,
  parts: { artifactSizes: { name: string; size: number }[]; ukiData: Buffer; weights: ComponentSizes; rules: string },
): Promise<{ name: string; unlisted: boolean; data: Buffer }> {
  // not under the size budget nor in the manifest: its timings differ from build to build
  return {
    name: FILES.report,
    unlisted: true,
    data: Buffer.from(
      renderReport({
        profile: plan.profile.name,
        version: plan.version,
        kernelRelease: steps.kernel.release,
        moduleCount: steps.kernel.moduleCount,
        moduleSigningCertSha256: steps.kernel.signingCertSha256,
        artifacts: parts.artifactSizes,
        breakdowns: await sizeBreakdowns(parts.ukiData, steps.initramfs.image, steps.rootfs.image, steps.initBinary, parts.weights),
        timeline: steps.timeline,
        hardening: { rules: parts.rules, decisions: steps.hardening.decisions, summary: steps.hardening.summary, suppressed: steps.hardening.suppressed.map((x) => ({ option: x.option_name, reason: x.reason })) },
        sbom: steps.sbom.components.map((c) => ({ name: c.name, version: c.version, license: c.license, kind: c.kind, purl: c.purl })),
      }),
    ),
  };
}

/** Builds a profile: packages, kernel, rootfs, initramfs, UKI; then publishes to _out/<profile>. */
export async function buildProfile(profile: Profile, ctx: PipelineContext, version: string, options: BuildOptions = {}): Promise<BuildResult> {
  const started = Date.now();
  // 1. the plan: the profile checked against pkgs/ and its extensions
  const plan = await planBuild(profile, ctx, version);
  // 2. the step graph: packages, kernel, rootfs, extensions, initramfs, hardening gate, UKI
  const steps = await runStepGraph(plan, ctx, options, started);
  // 3. signing: Secure Boot copies of the UKI and systemd-boot
  const boot = await bootImages(profile, steps, options.secureBootSigner);
  const { ukiData, bootloaderData, signedImages } = boot;
  // 4. the outputs: boot files, record, installer, size budget, report, disk; then publishing
  const { kernel, rootfs, hardening: hardeningReport } = steps;
  const outDir = join(ctx.projectRoot, "_out", profile.name);
  const sbomNames = sbomFileNames(profile.baseImage);
  const bootFiles = [
    { name: FILES.rootfs, from: rootfs.image },
    { name: FILES.initramfs, from: steps.initramfs.image },
    { name: FILES.kernel, from: kernel.image },
    { name: FILES.uki, from: steps.uki.image },
    { name: FILES.moduleCert, from: kernel.signingCert },
    { name: sbomNames.spdx, from: rootfs.spdx },
    { name: sbomNames.cyclonedx, from: rootfs.cyclonedx },
  ];
  // hashed once: the installer's manifest, the size budget and the report all list them
  const bootDescribed = await describeFiles(bootFiles);
  const weights = await componentSizes(steps.rootPackages.map((p) => p.artifact), kernel, steps.rootfs);
  // each layer hashed once: the extensions and the layers list both name it
  const layerRecords = await Promise.all(steps.layers.map(async (l) => ({ name: l.name, sha256: await sha256File(l.image), size: await treeBytes(l.image) })));
  const record = manifestRecord(plan, steps, ctx, { weights, layerRecords, signedImages, signer: options.secureBootSigner });
  const hardeningJson = Buffer.from(`${JSON.stringify(hardeningReport, null, 2)}\n`);
  // the base's SBOM is in its rootfs; what the extensions add has its own, published and in the installer
  const extensionSboms = steps.extensions ? extensionSbomFiles(profile, version, ctx, steps.extensions) : [];
  const installer = await installerStep(plan, steps, ctx, { bootDescribed, bootloaderData, signedImages, hardeningJson, extensionSboms, record });
  // this tree's extensions as OCI images, to sign and publish for images on the same base build
  const treeImages = await Promise.all(
    (steps.extensions ?? []).filter((e) => e.origin.kind === "build").map(async (e) => ({ name: `extensions/${e.content.manifest.name}.oci.tar`, data: await treeExtensionImage(e, ctx.epoch) })),
  );
  const contents = [...signedImages, { name: FILES.hardening, data: hardeningJson }, ...extensionSboms, ...treeImages];
  const installerTar = { name: FILES.installerTar, size: installer.tarSize, sha256: installer.tarSha256 };
  const published = (file: { name: string }) => isPublished(profile.outputs, file.name);
  const artifactSizes = [...bootDescribed, installerTar, ...describeData(contents)].filter(published).map(({ name, size }) => ({ name, size }));
  if (!options.acceptSizeGrowth) await enforceSizeBudget(profile, outDir, { artifacts: Object.fromEntries(artifactSizes.map((a) => [a.name, a.size])), components: record.sizes.components });
  const report = await reportFile(plan, steps, { artifactSizes, ukiData, weights, rules: record.hardening.rules });
  const disk = profile.outputs.includes("disk") ? await diskOutput(plan, ctx.epoch, boot, outDir) : undefined;
  const files = await publish(outDir, {
    // described above: their digests are not taken again
    copies: [...bootDescribed, { ...installerTar, from: installer.tar }, ...installer.layout.map((f) => ({ name: `installer/${f.path}`, from: f.from }))].filter(published),
    contents: [...contents, report].filter(published),
    moves: disk ? [{ name: FILES.disk, from: disk }] : [],
    manifest: {
      ...record,
      installer: {
        layout: "installer",
        tag: version,
        profileTag: profileTag(version, profile.id),
        indexDigest: installer.indexDigest,
        manifests: installer.manifestDigests.map((digest) => ({ architecture: archNamed(profile.arch).oci, digest })),
      },
    },
  });
  return {
    profile,
    outDir,
    files,
    kernel,
    packages: [...steps.packages.values()],
    sbom: steps.sbom,
    hardening: hardeningReport,
    ran: [...ctx.ran],
    durationMs: Date.now() - started,
  };
}
