// report.html of a build: its sizes and their breakdowns, the timeline, the hardening verdicts, the SBOM.
import type { VulnerabilityOutcome } from "../vuln/build-gate.ts";
import { kernelComponent, type KernelArtifact } from "../kernel/build.ts";
import type { PackageArtifact } from "../pkgs/build.ts";
import type { RootfsArtifact } from "../rootfs/build.ts";
import { treeBytes } from "../core/tree-size.ts";
import { FILES } from "../core/outputs.ts";
import { humanBytes, renderReport, type ReportInput } from "../report/html.ts";
import { readUkiSections } from "../uki/uki.ts";
import type { BuildPlan } from "./plan.ts";
import type { StepResults } from "./steps.ts";

/** What each component puts in the image, in bytes: each package and the kernel's modules in the rootfs, the kernel image. */
export interface ComponentSizes {
  packages: Record<string, number>;
  kernelImage: number;
  kernelModules: number;
}

export async function componentSizes(packages: readonly PackageArtifact[], kernel: KernelArtifact, rootfs: RootfsArtifact): Promise<ComponentSizes> {
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

/** report.html: sizes, their breakdowns, the timeline, the hardening verdicts and the SBOM's components. */
/** The gate's verdict as the report's table: every finding, fixed or decided, with how. */
function vulnerabilityRows(v: VulnerabilityOutcome["record"]) {
  const row = (f: (typeof v.findings)[number], decision: string) => ({ component: f.component, advisory: [f.advisory, ...f.aliases].join(", "), severity: f.severity, fixed: f.fixed, decision });
  return {
    failOn: v.failOn,
    advisories: v.advisories,
    rows: [
      ...v.fixedByPatch.map((f) => row(f, "fixed by a patch of the build")),
      ...v.suppressed.map((f) => row(f, `VEX ${f.vex?.status ?? ""}: ${f.vex?.reason ?? ""}`)),
      ...v.findings.map((f) => row(f, f.vex ? `VEX ${f.vex.status}: ${f.vex.reason}` : `below ${v.failOn}`)),
    ],
  };
}

export async function reportFile(
  plan: BuildPlan,
  steps: StepResults,
  parts: { artifactSizes: { name: string; size: number }[]; ukiData: Buffer; weights: ComponentSizes; rules: string; vulnerabilities?: VulnerabilityOutcome["record"] },
): Promise<{ name: string; unlisted: boolean; data: Buffer }> {
  // not under the size budget nor in the manifest: its timings differ from build to build
  return {
    name: FILES.report,
    unlisted: true,
    data: Buffer.from(
      renderReport({
        profile: plan.profile.name,
        arch: plan.profile.arch,
        version: plan.version,
        kernelRelease: steps.kernel.release,
        moduleCount: steps.kernel.moduleCount,
        moduleSigningCertSha256: steps.kernel.signingCertSha256,
        artifacts: parts.artifactSizes,
        breakdowns: await sizeBreakdowns(parts.ukiData, steps.initramfs.image, steps.rootfs.image, steps.initBinary, parts.weights),
        timeline: steps.timeline,
        hardening: { rules: parts.rules, decisions: steps.hardening.decisions, summary: steps.hardening.summary, suppressed: steps.hardening.suppressed.map((x) => ({ option: x.option_name, reason: x.reason })) },
        sbom: steps.sbom.components.map((c) => ({ name: c.name, version: c.version, license: c.license, kind: c.kind, purl: c.purl })),
        ...(parts.vulnerabilities ? { vulnerabilities: vulnerabilityRows(parts.vulnerabilities) } : {}),
      }),
    ),
  };
}
