import { layerEntries } from "./layers.ts";
import { archNamed, type Arch } from "../core/arch.ts";
import { containerBundle, parseContainers, type ContainerImage } from "./containers.ts";
import type { KeyObject } from "node:crypto";
import { access, readdir, readFile } from "node:fs/promises";
import { join, posix, relative } from "node:path";
import { BronzeError, InputError } from "../core/errors.ts";
import { sha256 } from "../core/hash.ts";
import { FieldReader, YamlFile } from "../core/yamlfile.ts";
import { displayPath } from "../core/paths.ts";
import type { KernelArtifact } from "../kernel/build.ts";
import { signerCertificate } from "../kernel/module-sig.ts";
import { entriesDigest, readTree } from "../oci/dir-read.ts";
import { openLayout } from "../oci/layout-read.ts";
import type { ReadEntry } from "../oci/tar-read.ts";
import type { PackageArtifact } from "../pkgs/build.ts";
import type { Profile } from "../profile/profile.ts";
import type { ExtensionPart } from "../sbom/extensions.ts";
import { extensionImage, loadExtension } from "./image.ts";
import { parseExtensionManifest, type ExtensionManifest } from "./manifest.ts";
import { checkExtension, describeViolation, type ExtensionContent, type Violation } from "./policy.ts";
import { imageDigest, verifyLayout } from "./signature.ts";
import { isServiceDefinition, parseServiceDefinition, SERVICE_FORMAT, serviceGraphProblems } from "./services.ts";

/** An extension of this tree (`build: NAME`): manifest.yaml, rootfs/, and build.yaml naming what this build makes for it. */
export interface TreeExtension {
  dir: string;
  name: string;
  manifest: ExtensionManifest;
  /** userland packages whose files the extension ships */
  packages: string[];
  /** kernel-module packages (built by the kernel job, see kernel.extensionModules) whose modules it ships */
  kernelModules: string[];
  /** containers made from OCI images in its directory, as runtime bundles in its layer */
  containers: ContainerImage[];
}

const NAME = /^[a-z0-9][a-z0-9-]*$/;

export async function loadTreeExtension(dir: string): Promise<TreeExtension> {
  const manifestFile = join(dir, "manifest.yaml");
  const text = await readFile(manifestFile, "utf8").catch(() => {
    throw new InputError(`${displayPath(dir)}: no manifest.yaml; an extension directory holds manifest.yaml, rootfs/ and, for what this build makes, build.yaml`);
  });
  const manifest = parseExtensionManifest(displayPath(manifestFile), text);
  const buildFile = join(dir, "build.yaml");
  const exists = await access(buildFile).then(() => true, () => false);
  if (!exists) return { dir, name: manifest.name, manifest, packages: [], kernelModules: [], containers: [] };
  const yaml = await YamlFile.load(buildFile);
  const f = new FieldReader(yaml);
  const top = f.mapping(yaml.data, []);
  f.onlyKeys(top, [], ["packages", "kernelModules", "containers"]);
  const names = (key: string) => (top[key] === undefined ? [] : f.list(top[key], [key]).map((n, i) => f.string(n, [key, i], NAME, "a package name")));
  return { dir, name: manifest.name, manifest, packages: names("packages"), kernelModules: names("kernelModules"), containers: parseContainers(yaml, f, top.containers, dir) };
}

/** Where an extension came from, as the manifest records it. */
export type ExtensionOrigin =
  | { kind: "build"; dir: string }
  | { kind: "image"; source: string; reference?: string; digest: string; signature: "verified" | "allowed unsigned"; signedBy?: string };

export interface ResolvedExtension {
  content: ExtensionContent;
  origin: ExtensionOrigin;
}

/** Entries of several trees as one, later trees adding to earlier ones; a file written twice is refused. */
function mergeEntries(name: string, trees: readonly { what: string; entries: readonly ReadEntry[] }[]): ReadEntry[] {
  const merged = new Map<string, { what: string; entry: ReadEntry }>();
  for (const { what, entries } of trees) {
    for (const entry of entries) {
      const earlier = merged.get(entry.path);
      if (earlier && (earlier.entry.type !== "dir" || entry.type !== "dir")) {
        throw new InputError(`extension '${name}': /${entry.path} comes from both ${earlier.what} and ${what}`);
      }
      if (!earlier) merged.set(entry.path, { what, entry });
    }
  }
  return [...merged.values()].map((m) => m.entry).sort((a, b) => (a.path < b.path ? -1 : 1));
}

/**
 * An extension of this tree, with the files of its packages, the modules the kernel job built for it and
 * the bundles of its containers (made from their images for `arch`; `log` hears what each was made from).
 */
export async function treeExtension(def: TreeExtension, packages: ReadonlyMap<string, PackageArtifact>, kernel: KernelArtifact, arch: Arch, log: (line: string) => void): Promise<ResolvedExtension> {
  const rootfs = join(def.dir, "rootfs");
  const own = await access(rootfs).then(() => readTree(rootfs), () => []);
  const images = def.containers.map((c) => c.image.split("/")[0]);
  const stray = (await readdir(def.dir)).filter((name) => !["manifest.yaml", "build.yaml", "rootfs", ...images].includes(name)).sort();
  const trees = [{ what: displayPath(rootfs), entries: own }];
  for (const name of def.packages) {
    const artifact = packages.get(name);
    if (!artifact) throw new Error(`internal: package ${name} of extension ${def.name} was not built`);
    trees.push({ what: `package ${name}`, entries: await readTree(artifact.dir) });
  }
  for (const name of def.kernelModules) {
    const dir = kernel.extensionModules[name];
    if (!dir) throw new InputError(`extension '${def.name}' (${displayPath(def.dir)}/build.yaml) ships kernel module package '${name}', which this image's kernel does not build: add it to kernel.extensionModules of the base profile`);
    trees.push({ what: `kernel module package ${name}`, entries: await readTree(dir) });
  }
  for (const container of def.containers) {
    const bundle = await containerBundle(container, def.dir, arch);
    bundle.notes.forEach((note) => log(`extension ${def.name}: ${note}`));
    trees.push({ what: `container ${container.name} (image ${container.image})`, entries: bundle.entries });
  }
  return { content: { manifest: def.manifest, entries: mergeEntries(def.name, trees), stray }, origin: { kind: "build", dir: def.dir } };
}

/**
 * An extension of this tree as an OCI image (manifest.yaml and rootfs/ with what this build made
 * for it), to sign and publish: its modules load only on kernels of this build's kernel entry.
 */
export async function treeExtensionImage(ext: ResolvedExtension, epoch: number, arch: Arch): Promise<Buffer> {
  if (ext.origin.kind !== "build") throw new Error("internal: only extensions of this tree are published");
  const manifest = await readFile(join(ext.origin.dir, "manifest.yaml"));
  const file = { path: "manifest.yaml", type: "file" as const, mode: 0o644, uid: 0, gid: 0, data: manifest };
  const rootfs = { path: "rootfs", type: "dir" as const, mode: 0o755, uid: 0, gid: 0 };
  const entries = [file, rootfs, ...ext.content.entries.map((e) => ({ ...e, path: `rootfs/${e.path}` }))];
  return extensionImage(ext.content, entries, { epoch, arch: arch.oci }).tar;
}

/**
 * An extension image pinned by digest: the digest, then its signature, then its content (parsed
 * after a signature verified it; an unsigned image's name is read to find it in allowUnsigned).
 */
export async function imageExtension(
  ref: { source: string; digest: string; reference?: string },
  trusted: readonly { path: string; key: KeyObject }[],
  admit: Pick<Profile, "allowUnsigned" | "talosExtensions" | "arch">,
): Promise<ResolvedExtension> {
  const { allowUnsigned } = admit;
  // opened once: the signature check and the content read the same layout
  const layout = await openLayout(ref.source);
  const digest = imageDigest(layout);
  if (digest !== ref.digest) {
    throw new BronzeError(`extension image ${displayPath(ref.source)} is ${digest}, but the profile pins ${ref.digest}: it is not the image the profile names (changed or replaced); if the change is expected, pin the new digest`);
  }
  const keys = trusted.map((t) => t.key);
  const verified = keys.length ? await verifyLayout(layout, keys, digest).catch(() => undefined) : undefined;
  // an extension's programs run on the image's machine: an image for another architecture is refused
  const content = await loadExtension(layout, { talos: true, architecture: archNamed(admit.arch).oci });
  const name = content.manifest.name;
  const from = { kind: "image" as const, source: ref.source, ...(ref.reference ? { reference: ref.reference } : {}), digest };
  const signer = verified ? trusted[verified.keyIndex] : undefined;
  let origin: ResolvedExtension["origin"];
  if (verified) origin = { ...from, signature: "verified", ...(signer ? { signedBy: sha256(await readFile(signer.path)) } : {}) };
  else if (allowUnsigned.includes(name)) origin = { ...from, signature: "allowed unsigned" };
  else if (keys.length === 0) {
    throw new BronzeError(`extension '${name}' (${digest}): the profile trusts no key to verify its signature; add the signer's public key to trustedKeys, or name it in allowUnsigned`);
  } else {
    // the same check again, now to say what is wrong under the extension's name
    await verifyLayout(layout, keys, name);
    throw new Error(`internal: extension '${name}' verified on the second try only`);
  }
  if (content.manifest.talos !== undefined && !admit.talosExtensions.includes(name)) {
    throw new InputError(`extension '${name}' (${digest}) is built for Talos (${content.manifest.talos}), not for bronze; admit it by name in the profile's talosExtensions (only without kernel modules)`);
  }
  return { content, origin };
}

/** What the content policy checks extensions against: the base image, its kernel and version. */
export interface ImageFacts {
  osVersion: string;
  /** every path of the base rootfs */
  baseFiles: ReadonlySet<string>;
  kernel: KernelArtifact;
}

/** Applies the content policy to every extension, each also against those before it; fails listing every violation. */
export async function enforceExtensionPolicy(extensions: readonly ResolvedExtension[], facts: ImageFacts): Promise<void> {
  const moduleCert = signerCertificate(await readFile(facts.kernel.signingCert));
  const claimed = new Map<string, string>();
  const violations: Violation[] = [];
  const seen = new Set<string>();
  for (const ext of extensions) {
    const name = ext.content.manifest.name;
    if (seen.has(name)) violations.push({ extension: name, path: "manifest.yaml", rule: "overwrite", detail: "another extension of this image has the same name" });
    seen.add(name);
    violations.push(...checkExtension(ext.content, { osVersion: facts.osVersion, baseFiles: facts.baseFiles, claimed, moduleCert, kernelRelease: facts.kernel.release }));
    for (const e of ext.content.entries) if (e.type !== "dir" && !claimed.has(e.path)) claimed.set(e.path, name);
  }
  const services = extensions.flatMap((ext) => ext.content.entries.filter(isServiceDefinition).map((e) => ({ ext, e })));
  for (const { ext, e } of services.slice(SERVICE_FORMAT.maxServices)) {
    violations.push({ extension: ext.content.manifest.name, path: e.path, rule: "service-definition", detail: `more than ${SERVICE_FORMAT.maxServices} services in the image (init runs at most ${SERVICE_FORMAT.maxServices})` });
  }
  const parsed = services.flatMap(({ ext, e }) => {
    try {
      return [{ ext, e, service: parseServiceDefinition(e.path, posix.basename(e.path), (e.data ?? Buffer.alloc(0)).toString("utf8")) }];
    } catch {
      return []; // reported by checkExtension
    }
  });
  for (const { service, problem } of serviceGraphProblems(parsed.map((p) => p.service))) {
    const at = parsed.find((p) => p.service.name === service);
    if (at) violations.push({ extension: at.ext.content.manifest.name, path: at.e.path, rule: "service-definition", detail: `service '${service}' ${problem}` });
  }
  if (violations.length) {
    throw new InputError(`${violations.length} violation(s) of the extension content policy:\n${violations.map((v) => `  ${describeViolation(v)}`).join("\n")}`);
  }
}

/** How the image's manifest describes an extension: what it is, where it came from, how it was trusted, its layer. */
export function extensionRecord(ext: ResolvedExtension, layer: { name: string; sha256: string }, projectRoot: string): Record<string, unknown> {
  const { manifest } = ext.content;
  const origin =
    ext.origin.kind === "build"
      ? { built: relative(projectRoot, ext.origin.dir) }
      : { ...(ext.origin.reference ? { reference: ext.origin.reference } : {}), digest: ext.origin.digest, signature: ext.origin.signature, ...(ext.origin.signedBy ? { signedBy: `sha256:${ext.origin.signedBy}` } : {}) };
  return { name: manifest.name, version: manifest.version, author: manifest.author, ...origin, layer: { name: layer.name, sha256: layer.sha256 } };
}

/** An extension as the extensions SBOM describes it. */
export function extensionPart(ext: ResolvedExtension, projectRoot: string): ExtensionPart {
  const { manifest } = ext.content;
  const entries = layerEntries(ext);
  const source =
    ext.origin.kind === "build"
      ? { location: `bronze repository, ${relative(projectRoot, ext.origin.dir)}`, sha256: entriesDigest(entries) }
      : { location: ext.origin.reference ?? `OCI image ${manifest.name} ${manifest.version}`, sha256: ext.origin.digest.slice("sha256:".length) };
  return { name: manifest.name, version: manifest.version, description: manifest.description, source, entries };
}
