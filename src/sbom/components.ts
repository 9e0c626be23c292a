import { kernelComponent, type KernelArtifact } from "../kernel/build.ts";
import type { KernelSource } from "../kernel/source.ts";
import { patchRecords, type PackageArtifact } from "../pkgs/build.ts";
import type { PackageDef } from "../pkgs/schema.ts";
import type { RootfsSbom } from "../rootfs/build.ts";
import { debianPurl, describePin, type SbomComponent } from "./model.ts";

export interface ImageParts {
  profile: string;
  version: string;
  arch: string;
  epoch: number;
  /** userland packages in the rootfs, each with its definition */
  packages: { def: PackageDef; artifact: PackageArtifact }[];
  /** libraries built into their programs (static), with the rootfs packages whose programs they are in */
  linked?: { def: PackageDef; artifact: PackageArtifact; into: string[] }[];
  kernelSource: KernelSource;
  kernel: KernelArtifact;
  /** out-of-tree module packages built with the kernel, with the digests of their sources as the kernel build verified them */
  kernelModules: readonly { def: PackageDef; sourceDigests: readonly string[] }[];
  /** local sources are named by their path in the repository */
  projectRoot: string;
}

function packageComponent(def: PackageDef, kind: SbomComponent["kind"], sourceDigests: readonly string[], projectRoot: string): SbomComponent {
  const sources = def.sources.map((pin, i) => describePin(pin, projectRoot, sourceDigests[i]));
  const purl = sources.find((s) => s.purl)?.purl;
  const patches = patchRecords(def);
  return {
    id: `${kind}-${def.name}`,
    name: def.name,
    version: def.version,
    license: def.license,
    kind,
    description: def.description,
    ...(purl ? { purl } : {}),
    sources: sources.map(({ location, sha256 }) => ({ location, sha256 })),
    ...(patches.length ? { patches } : {}),
  };
}

/** The component that stands for the image an SBOM describes. */
export function imageComponent(profile: string, version: string, description: string): SbomComponent {
  return { id: "image", name: `bronze-${profile}`, version, license: "NOASSERTION", kind: "image", description, sources: [] };
}

/** The SBOM's components for an image and which component each rootfs merge owner stands for. */
export function imageSbom(parts: ImageParts): RootfsSbom {
  const image = imageComponent(parts.profile, parts.version, `bronze image, profile ${parts.profile}, ${parts.arch}`);
  const kernel: SbomComponent = {
    id: "kernel-linux",
    name: "linux",
    version: parts.kernelSource.version,
    license: "GPL-2.0-only",
    kind: "kernel",
    description: `Linux ${parts.kernel.release} with its modules, from Debian's ${parts.kernelSource.package} ${parts.kernelSource.debianVersion}`,
    purl: debianPurl(parts.kernelSource.sourcePackage, parts.kernelSource.debianVersion),
    cpe: `cpe:2.3:o:linux:linux_kernel:${parts.kernelSource.version}:*:*:*:*:*:*:*`,
    sources: [describePin(parts.kernelSource.pin, parts.projectRoot)].map(({ location, sha256 }) => ({ location, sha256 })),
  };
  const packages = parts.packages.map(({ def, artifact }) => packageComponent(def, "package", artifact.sources.map((s) => s.digest), parts.projectRoot));
  const modules = parts.kernelModules.map(({ def, sourceDigests }) => packageComponent(def, "kernel-module", sourceDigests, parts.projectRoot));
  const linked = (parts.linked ?? []).map(({ def, artifact, into }) => ({
    ...packageComponent(def, "package", artifact.sources.map((s) => s.digest), parts.projectRoot),
    linkedInto: into.map((name) => `package-${name}`),
  }));
  return {
    image: { name: parts.profile, version: parts.version, arch: parts.arch, epoch: parts.epoch, toolVersion: parts.version },
    components: [image, kernel, ...packages, ...linked, ...modules],
    componentOf: Object.fromEntries([[kernelComponent(parts.kernel.profile), kernel.id], ...parts.packages.map(({ def }) => [def.name, `package-${def.name}`])]),
    imageComponent: image.id,
  };
}
