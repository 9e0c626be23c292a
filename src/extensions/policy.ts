import { posix } from "node:path";
import { verifyModule, type SignerCertificate } from "../kernel/module-sig.ts";
import { resolveInRoot, treeLookup } from "../oci/resolve.ts";
import type { ReadEntry } from "../oci/tar-read.ts";
import { satisfies, type ExtensionManifest } from "./manifest.ts";
import { CONTAINER_RUNTIME, parseServiceDefinition, SERVICES_DIR } from "./services.ts";

/** Where an extension may put files (paths inside the image root). */
export const ALLOWED_PREFIXES = [
  "usr/local/",
  "usr/share/",
  "usr/lib/firmware/",
  "usr/lib/modules/",
  "usr/lib/modules-load.d/",
  "usr/lib/udev/rules.d/",
  "usr/lib/bronze/services/",
  "etc/cri/conf.d/",
] as const;

export type PolicyRule =
  | "layout"
  | "path-traversal"
  | "allowed-paths"
  | "special-file"
  | "hardlink"
  | "setuid-setgid"
  | "world-writable"
  | "symlink-escape"
  | "overwrite"
  | "compatibility"
  | "module-signature"
  | "module-release"
  | "service-definition";

export interface Violation {
  extension: string;
  path: string;
  rule: PolicyRule;
  detail: string;
}

export interface ExtensionContent {
  manifest: ExtensionManifest;
  /** the entries under rootfs/, paths relative to the image root */
  entries: ReadEntry[];
  /** top-level entries of the layer other than manifest.yaml and rootfs/ */
  stray: string[];
}

export interface PolicyContext {
  osVersion: string;
  /** paths of the base image (files and symlinks) that an extension must not replace */
  baseFiles?: ReadonlySet<string>;
  /** files already claimed by other extensions of the same image: path -> extension */
  claimed?: ReadonlyMap<string, string>;
  /** the kernel's module-signing certificate: every module must verify against it */
  moduleCert?: SignerCertificate;
  /** the image's kernel release: modules must be under usr/lib/modules/<release>/ */
  kernelRelease?: string;
}

const allowed = (path: string): boolean => ALLOWED_PREFIXES.some((p) => path.startsWith(p));
/** A directory on the way to an allowed place (usr, usr/lib) or inside one. */
const allowedDir = (path: string): boolean => allowed(`${path}/`) || ALLOWED_PREFIXES.some((p) => p.startsWith(`${path}/`));

function traversal(path: string): boolean {
  return path.startsWith("/") || path.split("/").some((part) => part === ".." || part === "") || path.includes("\\");
}

/** Where a symlink points, inside the image root; undefined when it climbs out of it. */
function resolveLink(path: string, target: string): string | undefined {
  const joined = target.startsWith("/") ? target.slice(1) : posix.join(posix.dirname(path), target);
  const normal = posix.normalize(joined);
  return normal === ".." || normal.startsWith("../") ? undefined : normal.replace(/^\.\/?/, "");
}

/** Every way an extension breaks the content policy; empty when it may be used. */
export function checkExtension(ext: ExtensionContent, context: PolicyContext): Violation[] {
  const name = ext.manifest.name;
  const violations: Violation[] = [];
  const refuse = (path: string, rule: PolicyRule, detail: string) => violations.push({ extension: name, path, rule, detail });

  for (const stray of ext.stray) refuse(stray, "layout", "an extension holds manifest.yaml and rootfs/ only");
  // a Talos-built extension names no bronze version; admitted only with nothing that needs bronze's kernel
  const talos = ext.manifest.talos !== undefined;
  if (!talos && !satisfies(context.osVersion, ext.manifest.compatibility)) {
    refuse("manifest.yaml", "compatibility", `needs bronze ${ext.manifest.compatibility}; this image is ${context.osVersion}`);
  }
  for (const entry of ext.entries) {
    const path = entry.path;
    if (traversal(path)) {
      refuse(path, "path-traversal", "absolute paths, '..' and empty components are not allowed");
      continue;
    }
    if (entry.type === "dir" ? !allowedDir(path) : !allowed(path)) {
      refuse(path, "allowed-paths", `outside the places extensions may write (${ALLOWED_PREFIXES.join(" ")})`);
    }
    if (entry.type === "char" || entry.type === "block" || entry.type === "fifo" || entry.type === "other") {
      refuse(path, "special-file", `a ${entry.type === "other" ? "socket or unknown entry" : entry.type === "fifo" ? "FIFO" : `${entry.type} device`}; only files, directories and symlinks`);
    }
    if (entry.type === "hardlink") refuse(path, "hardlink", "hard links are not allowed; copy the file or use a symlink");
    if (entry.type !== "symlink" && entry.mode & 0o6000) refuse(path, "setuid-setgid", `mode ${(entry.mode & 0o7777).toString(8)} has the setuid or setgid bit`);
    if (entry.type !== "symlink" && entry.mode & 0o002) refuse(path, "world-writable", `mode ${(entry.mode & 0o7777).toString(8)} is writable by everyone`);
    if (entry.type === "symlink") {
      const to = resolveLink(path, entry.target ?? "");
      if (to === undefined || !(to === "usr" || to.startsWith("usr/"))) {
        refuse(path, "symlink-escape", `points to '${entry.target ?? ""}', which leaves ${to === undefined ? "the image root" : "/usr"}`);
      }
    }
    if (entry.type !== "dir") {
      if (context.baseFiles?.has(path)) refuse(path, "overwrite", "replaces a file of the base image");
      const owner = context.claimed?.get(path);
      if (owner && owner !== name) refuse(path, "overwrite", `replaces a file of extension '${owner}'`);
    }
    if (context.kernelRelease && entry.type === "file" && path.endsWith(".ko") && !path.startsWith(`usr/lib/modules/${context.kernelRelease}/`)) {
      refuse(path, "module-release", `a kernel module outside usr/lib/modules/${context.kernelRelease}/, the release of this image's kernel`);
    }
    if (talos && entry.type !== "dir" && (/\.ko(\.(xz|zst|gz))?$/.test(path) || path.startsWith("usr/lib/modules/"))) {
      refuse(path, "compatibility", "a Talos-built extension is admitted without kernel modules only (they are built for Talos's kernel)");
    }
    if (path.startsWith(SERVICES_DIR) && entry.type !== "dir") {
      const problem = serviceProblem(entry, ext.entries, context.baseFiles);
      if (problem) refuse(path, "service-definition", problem);
    }
    if (context.moduleCert && entry.type === "file" && path.endsWith(".ko")) {
      const verdict = verifyModule(entry.data ?? Buffer.alloc(0), context.moduleCert);
      if (verdict.status !== "ok") refuse(path, "module-signature", `kernel module ${verdict.status === "unsigned" ? "is not signed" : `does not verify against this build's key (${verdict.status})`}`);
    }
  }
  return violations;
}

/** What is wrong with a file in the services directory, if anything: its definition, or a command the image lacks. */
function serviceProblem(entry: ReadEntry, entries: readonly ReadEntry[], baseFiles: ReadonlySet<string> | undefined): string | undefined {
  const fileName = posix.basename(entry.path);
  if (entry.type !== "file" || !fileName.endsWith(".yaml") || posix.dirname(entry.path) !== SERVICES_DIR.slice(0, -1)) {
    return `the services directory holds NAME.yaml files only (bronze writes what init reads)`;
  }
  let service;
  try {
    service = parseServiceDefinition(entry.path, fileName, (entry.data ?? Buffer.alloc(0)).toString("utf8"));
  } catch (e) {
    return (e as Error).message;
  }
  if (service.container) return containerProblem(service.container, entries, baseFiles);
  const program = service.command.slice(1);
  const shipped = entries.some((e) => e.path === program && e.type === "file" && e.mode & 0o111);
  // without the base image (bronze extension build), a command outside the extension is checked when an image uses it
  if (!shipped && baseFiles && !baseFiles.has(program)) return `command ${service.command} is neither an executable file of the extension nor a file of the base image`;
  return undefined;
}

/** What is wrong with a container service's bundle: its config.json, its program, or an image without crun. */
function containerProblem(bundle: string, entries: readonly ReadEntry[], baseFiles: ReadonlySet<string> | undefined): string | undefined {
  const runtime = CONTAINER_RUNTIME.command.slice(1);
  if (baseFiles && !baseFiles.has(runtime)) return `container ${bundle}: the base image has no container runtime (${CONTAINER_RUNTIME.command}; the crun package)`;
  const dir = bundle.slice(1);
  const config = entries.find((e) => e.path === `${dir}/config.json` && e.type === "file");
  if (!config) return `container ${bundle}: the extension has no ${bundle}/config.json (an OCI runtime bundle: config.json and rootfs/)`;
  let spec: { root?: { path?: unknown; readonly?: unknown }; process?: { args?: unknown } };
  try {
    spec = JSON.parse((config.data ?? Buffer.alloc(0)).toString("utf8")) as typeof spec;
  } catch (e) {
    return `container ${bundle}: config.json is not JSON: ${(e as Error).message}`;
  }
  if (spec.root?.path !== "rootfs" || spec.root.readonly !== true) return `container ${bundle}: config.json's root must be {"path": "rootfs", "readonly": true} (the bundle is in a read-only layer)`;
  const args = spec.process?.args;
  if (!Array.isArray(args) || args.length === 0 || !args.every((a) => typeof a === "string") || !String(args[0]).startsWith("/")) {
    return `container ${bundle}: config.json's process.args must start with the absolute path of a program in rootfs/`;
  }
  // looked up as the container sees its root: links inside it followed
  const root = `${dir}/rootfs/`;
  const at = treeLookup(entries.filter((e) => e.path.startsWith(root)).map((e) => [e.path.slice(root.length), e] as const));
  const found = resolveInRoot(String(args[0]), at);
  const program = found === undefined ? undefined : at(found);
  if (!(program?.type === "file" && (program as ReadEntry).mode & 0o111)) return `container ${bundle}: its program ${String(args[0])} is not an executable file of rootfs/`;
  return undefined;
}

export function describeViolation(v: Violation): string {
  return `extension '${v.extension}': ${v.path}: ${v.rule}: ${v.detail}`;
}
