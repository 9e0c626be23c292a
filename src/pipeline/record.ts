// manifest.json of a build, what it compares with the previous build, and the SBOMs of its extensions.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { kernelComponent } from "../kernel/build.ts";
import { extensionPart, extensionRecord, type ResolvedExtension } from "../extensions/assemble.ts";
import type { Profile } from "../profile/profile.ts";
import { extensionSbomFileNames } from "../sbom/model.ts";
import { extensionsSbom } from "../sbom/extensions.ts";
import { spdxDocument } from "../sbom/spdx.ts";
import { cycloneDxDocument } from "../sbom/cyclonedx.ts";
import type { SecureBootSigner } from "../secureboot/signer.ts";
import { BronzeError } from "../core/errors.ts";
import { FILES } from "../core/outputs.ts";
import { displayPath } from "../core/paths.ts";
import { toolVersions, type ToolSpec } from "../core/tools.ts";
import { isoTime } from "../sbom/model.ts";
import type { VulnerabilityOutcome } from "../vuln/build-gate.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { Reference } from "../registry/reference.ts";
import type { PipelineContext } from "./context.ts";
import type { BuildPlan } from "./plan.ts";
import type { ComponentSizes } from "./report.ts";
import { checkSizeBudget, describeOverrun, type SizeRecord } from "./size-budget.ts";
import { must, type StepResults } from "./steps.ts";

/** SPDX and CycloneDX documents of the extensions an image layers over its base. */
export function extensionSbomFiles(profile: Profile, version: string, ctx: PipelineContext, extensions: readonly ResolvedExtension[]): { name: string; data: Buffer }[] {
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


/**
 * The profile's vulnerability gate on the image's CycloneDX SBOMs (the base's in the rootfs, read only when
 * the profile has a gate, and what its extensions add):
 * the verdict for the build record and the OpenVEX document published beside the SBOMs; it throws when the
 * image may not ship.
 */
export async function imageVulnerabilities(
  profile: Profile,
  version: string,
  epoch: number,
  sboms: { rootfs: string; extensions: readonly { name: string; data: Buffer }[] },
  connect?: (ref: Reference) => Promise<RegistryClient>,
): Promise<VulnerabilityOutcome | undefined> {
  if (!profile.vulnerabilities) return undefined;
  const { vulnerabilityGate } = await import("../vuln/build-gate.ts");
  const all = [{ name: sboms.rootfs, data: await readFile(sboms.rootfs) }, ...sboms.extensions];
  return vulnerabilityGate(profile.vulnerabilities, all.filter((s) => s.name.endsWith(".cdx.json")), { name: profile.name, version, timestamp: isoTime(epoch) }, connect);
}

/** The OpenVEX document's name beside the SBOMs. */
export const vexFileName = (profile: string) => `${profile}.vex.json`;

const RECORDED_TOOLS: readonly ToolSpec[] = ["gcc", "ld", ["mksquashfs", "-version"], "zstd"];

/** The versions of what made the image (for its provenance): compilers, packers, the UKI's stub, Node. */
export async function toolchainRecord(stub: string): Promise<Record<string, string>> {
  const stubVersion = (await readFile(stub)).toString("latin1").match(/LoaderInfo: (systemd-stub [^ #]+)/)?.[1] ?? "systemd-stub (version not found)";
  return { ...(await toolVersions(RECORDED_TOOLS)), "systemd-stub": stubVersion, node: process.version };
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
export function manifestRecord(
  plan: BuildPlan,
  steps: StepResults,
  ctx: PipelineContext,
  parts: {
    weights: ComponentSizes;
    layerRecords: { name: string; sha256: string; size: number }[];
    signedImages: readonly { name: string }[];
    signer?: SecureBootSigner;
    toolchain: Record<string, string>;
    revision?: string;
    vulnerabilities?: VulnerabilityOutcome["record"];
  },
) {
  return {
    profile: plan.profile.name,
    profileId: plan.profile.id,
    arch: plan.profile.arch,
    ...(plan.profile.base ? { base: plan.profile.base } : {}),
    outputs: plan.profile.outputs,
    version: plan.version,
    sourceDateEpoch: ctx.epoch,
    cmdline: plan.profile.cmdline,
    ...(parts.revision ? { revision: parts.revision } : {}),
    toolchain: parts.toolchain,
    kernel: {
      version: plan.kernelSource.version,
      key: steps.kernel.key,
      release: steps.kernel.release,
      sourceSha256: plan.kernelSource.pin.sha256,
      moduleCount: steps.kernel.moduleCount,
      moduleSigningKey: steps.kernel.signingKey,
      moduleSigningCertSha256: steps.kernel.signingCertSha256,
      // out-of-tree module packages: built, signed and cached with the kernel
      modulePackages: plan.kernelModules.map((d) => ({ name: d.name, version: d.version, license: d.license })),
    },
    packages: [...steps.packages.values()].map((p) => ({ name: p.name, version: p.version, license: p.license, key: p.key, sources: p.sources, ...(p.patches.length ? { patches: p.patches } : {}) })),
    sizes: { components: { ...parts.weights.packages, [kernelComponent(steps.kernel.profile)]: parts.weights.kernelImage + parts.weights.kernelModules } },
    ...(steps.extensions ? { extensions: steps.extensions.map((e, i) => extensionRecord(e, must(parts.layerRecords[i], "extension layer"), ctx.projectRoot)) } : {}),
    ...(parts.layerRecords.length ? { layers: parts.layerRecords } : {}),
    secureBoot: parts.signer ? { signed: parts.signedImages.map((f) => f.name), certificateSha256: parts.signer.certificateSha256 } : null,
    ...(parts.vulnerabilities ? { vulnerabilities: parts.vulnerabilities } : {}),
    hardening: {
      rules: `${steps.hardening.rules.project} ${steps.hardening.rules.release}`,
      decisions: steps.hardening.decisions,
      ...steps.hardening.summary,
      report: FILES.hardening,
    },
  };
}

/** Fails the build when an artifact or component grew past the profile's size budget over its previous build. */
export async function enforceSizeBudget(profile: Profile, outDir: string, current: SizeRecord): Promise<void> {
  if (profile.sizeBudgetPercent === undefined) return;
  const previous = await previousSizes(outDir);
  if (!previous) return;
  const verdict = checkSizeBudget(previous, current, profile.sizeBudgetPercent);
  if (verdict.overruns.length) throw new BronzeError(describeOverrun(verdict, profile.sizeBudgetPercent, displayPath(profile.file)));
}
