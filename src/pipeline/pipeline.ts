import { readFile } from "node:fs/promises";
import type { InstallerContent } from "../disk/boot-files.ts";
import { join } from "node:path";
import { type KernelArtifact } from "../kernel/build.ts";
import { type PackageArtifact } from "../pkgs/build.ts";
import { treeExtensionImage } from "../extensions/assemble.ts";
import { outputDirName, type Profile } from "../profile/profile.ts";
import { type RootfsSbom } from "../rootfs/build.ts";
import { sbomFileNames } from "../sbom/model.ts";
import { archNamed } from "../core/arch.ts";
import { sourceRevision } from "../core/epoch.ts";
import { profileTag } from "../oci/installer.ts";
import { buildInstaller, type InstallerArtifact } from "../installer/build.ts";
import { type HardeningReport } from "../harden/build-gate.ts";
import { signBootImages, type SecureBootSigner } from "../secureboot/signer.ts";
import type { PipelineContext } from "./context.ts";
import { treeBytes } from "../core/tree-size.ts";
import { sha256File } from "../core/hash.ts";
import { DEFAULT_DISK_SIZE } from "../disk/sizes.ts";
import { planBuild, type BuildPlan } from "./plan.ts";
import { componentSizes, reportFile } from "./report.ts";
import { enforceSizeBudget, extensionSbomFiles, imageVulnerabilities, manifestRecord, toolchainRecord, vexFileName } from "./record.ts";
import { must, runStepGraph, type StepOptions, type StepResults } from "./steps.ts";
import { describeData, describeFiles, manifestBytes, publish, stagingDir, type CopiedFile, type PublishedFile } from "./publish.ts";
import { FILES, isBootMedium, isPublished, mediumFile } from "../core/outputs.ts";

export interface BuildResult {
  profile: Profile;
  outDir: string;
  files: PublishedFile[];
  kernel: KernelArtifact;
  packages: PackageArtifact[];
  /** the executable files of the rootfs, by path */
  executables: string[];
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

async function bootImages(plan: BuildPlan, steps: StepResults, signer: SecureBootSigner | undefined): Promise<BootImages> {
  const ukiData = await readFile(steps.uki.image);
  const bootloaderData = await readFile(plan.efi.bootloader);
  // signed on every build (milliseconds) and never cached: the key stays in memory
  const signedImages = signer
    ? signBootImages(signer, [
        { name: FILES.uki, data: ukiData },
        { name: FILES.bootloader, data: bootloaderData },
      ])
    : [];
  return { ukiData, bootloaderData, signedImages };
}

/** The boot media outputs of the profile, written beside the output directory for publish to move in. */
async function bootMediaOutputs(plan: BuildPlan, steps: StepResults, epoch: number, boot: BootImages, outDir: string): Promise<{ name: string; from: string }[]> {
  const media = plan.profile.outputs.filter(isBootMedium);
  if (media.length === 0) return [];
  // what readInstaller would take from the installer: the signed boot files when there are any
  const signedData = (name: string) => boot.signedImages.find((f) => f.name === name)?.data;
  const content: InstallerContent = {
    arch: archNamed(plan.profile.arch),
    version: plan.version,
    profile: plan.profile.name,
    epoch,
    uki: signedData(FILES.signedUki) ?? boot.ukiData,
    bootloader: signedData(FILES.signedBootloader) ?? boot.bootloaderData,
    kernel: await readFile(steps.kernel.image),
    initramfs: await readFile(steps.initramfs.image),
    cmdline: plan.profile.cmdline,
    signed: boot.signedImages.length > 0,
  };
  const { writeBootMedia } = await import("../disk/media.ts");
  const { written } = await writeBootMedia(content, media, async (medium) => join(await stagingDir(outDir, medium), mediumFile(medium)), DEFAULT_DISK_SIZE);
  return [...written].map(([medium, from]) => ({ name: mediumFile(medium), from }));
}

/** Choices of one build that are not part of the profile. */
export interface BuildOptions extends StepOptions {
  /** publish even when an artifact grew past the profile's size budget (the new sizes become the reference) */
  acceptSizeGrowth?: boolean;
  /** also write Secure Boot signed copies of the UKI and systemd-boot (uki.signed.efi, systemd-boot.signed.efi) */
  secureBootSigner?: SecureBootSigner;
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
    /** the extensions' SBOMs and the image's OpenVEX document */
    documents: readonly { name: string; data: Buffer }[];
    record: Record<string, unknown>;
    revision: string | undefined;
  },
): Promise<InstallerArtifact> {
  const sbomNames = sbomFileNames(plan.profile.baseImage);
  // the installer carries what boots and the manifest that describes it
  const described = new Map(files.bootDescribed.map((d) => [d.name, d]));
  const fromCache = (name: string, from: string) => ({ name, from, sha256: must(described.get(name), name).sha256 });
  // a signed installer carries what boots with Secure Boot in place of the unsigned UKI and systemd-boot:
  // signing adds signatures, not a second copy of each
  const signed = files.signedImages.length > 0;
  const bootFiles = signed ? [...files.signedImages] : [fromCache(FILES.uki, steps.uki.image), { name: FILES.bootloader, data: files.bootloaderData }];
  return buildInstaller(
    {
      arches: [
        {
          arch: plan.profile.arch,
          files: [
            ...bootFiles,
            fromCache(FILES.kernel, steps.kernel.image),
            fromCache(FILES.initramfs, steps.initramfs.image),
            fromCache(sbomNames.spdx, steps.rootfs.spdx),
            fromCache(sbomNames.cyclonedx, steps.rootfs.cyclonedx),
            { name: FILES.hardening, data: files.hardeningJson },
            ...files.documents,
            { name: FILES.manifest, data: manifestBytes(files.record, [...files.bootDescribed, ...describeData(files.signedImages)]) },
          ],
        },
      ],
      epoch: ctx.epoch,
      version: plan.version,
      revision: files.revision,
      source: process.env.BRONZE_SOURCE_URL,
      refName: plan.version,
      profile: { name: plan.profile.name, id: plan.profile.id },
    },
    ctx,
  );
}

/** Builds a profile: packages, kernel, rootfs, initramfs, UKI; then publishes to _out/<profile>. */
export async function buildProfile(profile: Profile, ctx: PipelineContext, version: string, options: BuildOptions = {}): Promise<BuildResult> {
  const started = Date.now();
  // 1. the plan: the profile checked against pkgs/ and its extensions
  const plan = await planBuild(profile, ctx, version);
  // 2. the step graph: packages, kernel, rootfs, extensions, initramfs, hardening gate, UKI
  const steps = await runStepGraph(plan, ctx, options, started);
  // the vulnerability gate, on the SBOMs (the base's in its rootfs; what the extensions add has its own)
  const extensionSboms = steps.extensions ? extensionSbomFiles(profile, version, ctx, steps.extensions) : [];
  const vulnerabilities = await imageVulnerabilities(profile, version, ctx.epoch, { rootfs: steps.rootfs.cyclonedx, extensions: extensionSboms }, options.connect);
  // published and in the installer: the extensions' SBOMs, the image's OpenVEX document
  const documents = [...extensionSboms, ...(vulnerabilities ? [{ name: vexFileName(profile.name), data: vulnerabilities.vex }] : [])];
  // 3. signing: Secure Boot copies of the UKI and systemd-boot
  const boot = await bootImages(plan, steps, options.secureBootSigner);
  const { ukiData, bootloaderData, signedImages } = boot;
  // 4. the outputs: boot files, record, installer, size budget, report, boot media; then publishing
  const { kernel, rootfs, hardening: hardeningReport } = steps;
  const outDir = join(ctx.projectRoot, "_out", outputDirName(profile));
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
  const revision = await sourceRevision(ctx.projectRoot);
  const toolchain = await toolchainRecord(plan.efi.stub);
  const record = manifestRecord(plan, steps, ctx, { weights, layerRecords, signedImages, signer: options.secureBootSigner, toolchain, revision, vulnerabilities: vulnerabilities?.record });
  const hardeningJson = Buffer.from(`${JSON.stringify(hardeningReport, null, 2)}\n`);
  const installer = await installerStep(plan, steps, ctx, { bootDescribed, bootloaderData, signedImages, hardeningJson, documents, record, revision });
  // this tree's extensions as OCI images, to sign and publish for images on the same base build
  const treeImages = await Promise.all(
    (steps.extensions ?? []).filter((e) => e.origin.kind === "build").map(async (e) => ({ name: `extensions/${e.content.manifest.name}.oci.tar`, data: await treeExtensionImage(e, ctx.epoch, archNamed(profile.arch)) })),
  );
  const contents = [...signedImages, { name: FILES.hardening, data: hardeningJson }, ...documents, ...treeImages];
  const installerTar = { name: FILES.installerTar, size: installer.tarSize, sha256: installer.tarSha256 };
  const published = (file: { name: string }) => isPublished(profile.outputs, file.name);
  const artifactSizes = [...bootDescribed, installerTar, ...describeData(contents)].filter(published).map(({ name, size }) => ({ name, size }));
  if (!options.acceptSizeGrowth) await enforceSizeBudget(profile, outDir, { artifacts: Object.fromEntries(artifactSizes.map((a) => [a.name, a.size])), components: record.sizes.components });
  const report = await reportFile(plan, steps, { artifactSizes, ukiData, weights, rules: record.hardening.rules, vulnerabilities: vulnerabilities?.record });
  const media = await bootMediaOutputs(plan, steps, ctx.epoch, boot, outDir);
  const files = await publish(outDir, {
    // described above: their digests are not taken again
    copies: [...bootDescribed, { ...installerTar, from: installer.tar }, ...installer.layout.map((f) => ({ name: `installer/${f.path}`, from: f.from }))].filter(published),
    contents: [...contents, report].filter(published),
    moves: media,
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
    executables: rootfs.executables,
    sbom: steps.sbom,
    hardening: hardeningReport,
    ran: [...ctx.ran],
    durationMs: Date.now() - started,
  };
}
