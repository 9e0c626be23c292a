// Containers an extension's build.yaml makes from OCI images (`containers:`): each image, pinned by digest
// and read with every blob checked, becomes an OCI runtime bundle in the extension's layer
// (usr/local/lib/containers/NAME: its flattened root and the config.json bronze writes), which a service
// definition names (`container: /usr/local/lib/containers/NAME`) and init runs with crun.
import { posix, relative, resolve } from "node:path";
import type { Arch } from "../core/arch.ts";
import { InputError } from "../core/errors.ts";
import { displayPath } from "../core/paths.ts";
import type { FieldReader, YamlFile } from "../core/yamlfile.ts";
import { flattenLayers } from "../oci/flatten.ts";
import { openLayout, readImage } from "../oci/layout-read.ts";
import { relativeLinkTarget, resolveInRoot } from "../oci/resolve.ts";
import { readTar, type ReadEntry } from "../oci/tar-read.ts";
import { containerSpec, imageProcess, mountPoints, processEnv, type ContainerSettings, type ImageProcess } from "./container-spec.ts";
import { confinementOf, SERVICE_FORMAT } from "./services.ts";

/** Where the bundles of containers made from images go in the image, as services name them. */
export const CONTAINERS_DIR = "usr/local/lib/containers";

/** A container of build.yaml: the image it is made from, and how it runs. */
export interface ContainerImage {
  name: string;
  /** the OCI image layout (a directory or a tar of one), a path inside the extension's directory */
  image: string;
  /** the tag of the layout (org.opencontainers.image.ref.name); else its only image */
  ref?: string;
  /** the digest the layout names the image by (its index or manifest): what is converted, exactly */
  digest: string;
  /** the user and group to run as, instead of the image's User */
  uid?: number;
  gid?: number;
  settings: ContainerSettings;
}

const KEYS = ["name", "image", "ref", "digest", "user", "group", "args", "capabilities", "seccomp", "network", "limits", "tmpfs"];
const NAME = new RegExp(`^[a-z0-9][a-z0-9-]{0,${SERVICE_FORMAT.maxName - 1}}$`);
const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** where a tmpfs cannot go: the runtime's own mounts */
const RUNTIME_MOUNTS = ["/proc", "/dev", "/sys"];

/** build.yaml's `containers:` list; errors name the file, the line and the fix. */
export function parseContainers(yaml: YamlFile, f: FieldReader, value: unknown, extensionDir: string): ContainerImage[] {
  if (value === undefined) return [];
  const seen = new Set<string>();
  return f.list(value, ["containers"]).map((item, i) => {
    const at = (...keys: (string | number)[]) => ["containers", i, ...keys];
    const top = f.mapping(item, at());
    f.onlyKeys(top, at(), KEYS);
    const name = f.string(top.name, at("name"), NAME, "lowercase letters, digits and '-' (the service that runs it names it)");
    if (seen.has(name)) throw yaml.error(at("name"), `container '${name}' is named twice`);
    seen.add(name);
    const image = f.string(top.image, at("image"));
    const inside = relative(extensionDir, resolve(extensionDir, image));
    if (posix.isAbsolute(image) || inside === "" || inside.startsWith("..")) {
      throw yaml.error(at("image"), `image '${image}' must be a path inside the extension's directory (an OCI image layout, or a tar of one, e.g. images/${name})`);
    }
    const digest = f.string(top.digest, at("digest"), DIGEST, "the image's digest, sha256:<64 hex> (skopeo inspect oci:DIR:TAG, or the layout's index.json)");
    const ref = f.optionalString(top.ref, at("ref"));
    const { capabilities, syscalls, network, limits } = confinementOf(yaml, f, top, name, at());
    const args = top.args === undefined ? undefined : f.list(top.args, at("args")).map((a, j) => (typeof a === "number" ? String(a) : f.string(a, at("args", j))));
    const tmpfs = top.tmpfs === undefined ? [] : f.list(top.tmpfs, at("tmpfs")).map((p, j) => {
      const path = f.string(p, at("tmpfs", j), /^\/[^\n]+$/, "an absolute path in the container");
      if (posix.normalize(path) !== path || path.endsWith("/") || RUNTIME_MOUNTS.some((m) => path === m || path.startsWith(`${m}/`))) {
        throw yaml.error(at("tmpfs", j), `tmpfs '${path}' must be a normalized absolute path outside ${RUNTIME_MOUNTS.join(", ")} (the runtime mounts those)`);
      }
      return path;
    });
    const id = (key: string) => (top[key] === undefined ? undefined : f.integer(top[key], at(key)));
    const uid = id("user");
    const gid = id("group") ?? uid;
    return {
      name,
      image: inside,
      ...(ref !== undefined ? { ref } : {}),
      digest,
      ...(uid !== undefined ? { uid, gid } : {}),
      settings: { capabilities, syscalls, network, limits, tmpfs, ...(args ? { args } : {}) },
    };
  });
}

/** A line of an /etc/passwd or /etc/group of the image's root, by its first field. */
function accountLine(file: string, name: string, tree: ReadonlyMap<string, ReadEntry>, by: 0 | 2 = 0): string[] | undefined {
  const path = resolveInRoot(file, (p) => tree.get(p));
  const text = path === undefined ? "" : (tree.get(path)?.data ?? Buffer.alloc(0)).toString("utf8");
  return text.split("\n").map((l) => l.split(":")).find((fields) => fields[by] === name);
}

/** A number, or the id of `name` in the image's /etc/passwd or /etc/group. */
function idOf(value: string, file: string, tree: ReadonlyMap<string, ReadEntry>, where: string): number {
  if (/^\d+$/.test(value)) return Number(value);
  const id = accountLine(file, value, tree)?.[2];
  if (id === undefined || !/^\d+$/.test(id)) throw new InputError(`${where}: its User names '${value}', which its /${file} does not have; give user: (and group:) as numbers in build.yaml`);
  return Number(id);
}

/**
 * The container's user and group (build.yaml's, else the image's User: numbers, or names of its passwd
 * and group) and its home (from passwd, as container runtimes set HOME; / without an entry).
 */
function identity(container: ContainerImage, image: ImageProcess, tree: ReadonlyMap<string, ReadEntry>, where: string): { uid: number; gid: number; home: string } {
  const [user = "", group] = image.user.split(":");
  const uid = container.uid ?? (user ? idOf(user, "etc/passwd", tree, where) : 0);
  const account = accountLine("etc/passwd", String(uid), tree, 2);
  const gid = container.gid ?? (group ? idOf(group, "etc/group", tree, where) : account?.[3] && /^\d+$/.test(account[3]) ? Number(account[3]) : uid);
  return { uid, gid, home: account?.[5] || "/" };
}

/** The process's arguments; a program named without a path is looked up in the container's PATH. */
function processArgs(container: ContainerImage, image: ImageProcess, env: readonly string[], tree: ReadonlyMap<string, ReadEntry>, where: string): string[] {
  const args = [...image.entrypoint, ...(container.settings.args ?? image.cmd)];
  const [program, ...rest] = args;
  if (program === undefined) throw new InputError(`${where}: the image has no Entrypoint or Cmd; give args: in build.yaml`);
  if (program.includes("/")) return [posix.resolve(image.workingDir, program), ...rest];
  const path = (env.find((e) => e.startsWith("PATH="))?.slice(5) ?? "/usr/local/bin:/usr/bin:/bin").split(":");
  for (const dir of path) {
    const candidate = posix.join(dir, program);
    const found = resolveInRoot(candidate, (p) => tree.get(p));
    const entry = found === undefined ? undefined : tree.get(found);
    if (entry?.type === "file" && entry.mode & 0o111) return [candidate, ...rest];
  }
  throw new InputError(`${where}: its program '${program}' is in no directory of its PATH (${path.join(":")})`);
}

const dirEntry = (path: string): ReadEntry => ({ path, type: "dir", mode: 0o755, uid: 0, gid: 0 });

/**
 * The root's entries made fit for the extension's read-only layer: links made relative (the same place
 * inside the container, and inside the layer), setuid, setgid and world-write bits cleared (no process
 * of the container gains privileges, and the root is read-only), parent directories and the runtime's
 * mount points added.
 */
function layerReady(entries: readonly ReadEntry[], mounts: readonly string[]): ReadEntry[] {
  const tree = new Map<string, ReadEntry>();
  const add = (entry: ReadEntry) => {
    const parts = entry.path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (!tree.has(parent)) tree.set(parent, dirEntry(parent));
    }
    tree.set(entry.path, entry);
  };
  for (const e of entries) {
    const mode = e.type === "symlink" ? e.mode : e.mode & ~0o6002;
    add(e.type === "symlink" ? { ...e, target: relativeLinkTarget(e.path, e.target ?? "") } : { ...e, mode });
  }
  for (const mount of mounts) {
    const path = mount.slice(1);
    const existing = resolveInRoot(path, (p) => tree.get(p));
    if (existing === undefined) add(dirEntry(path));
  }
  return [...tree.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export interface ContainerBundle {
  /** the bundle's entries, at their paths in the image */
  entries: ReadEntry[];
  /** the image's digest and what was left out, for the build's log */
  notes: string[];
}

/** The bundle of one container of build.yaml, from its image in the extension's directory (`dir`). */
export async function containerBundle(container: ContainerImage, dir: string, arch: Arch): Promise<ContainerBundle> {
  const source = resolve(dir, container.image);
  const where = `${displayPath(dir)}/build.yaml: container '${container.name}' (${displayPath(source)})`;
  const layout = await openLayout(source);
  const image = await readImage(layout, { ...(container.ref !== undefined ? { ref: container.ref } : {}), architecture: arch.oci });
  if (image.digest !== container.digest) {
    throw new InputError(`${where}: the image is ${image.digest}, but build.yaml pins ${container.digest}: it is not the image build.yaml names; if the change is expected, pin the new digest`);
  }
  const layers = await Promise.all(
    image.layers.map((layer, i) =>
      readTar(layer).catch((e: unknown) => {
        throw new InputError(`${where}: layer ${i} is not a tar (${(e as Error).message})`);
      }),
    ),
  );
  const flat = flattenLayers(layers, (i) => `${where}: layer ${i}`);
  const tree = new Map(flat.entries.map((e) => [e.path, e]));
  const process = imageProcess(image.config);
  const { uid, gid, home } = identity(container, process, tree, where);
  const env = processEnv(process);
  if (!env.some((e) => e.startsWith("HOME="))) env.push(`HOME=${home}`);
  const args = processArgs(container, process, env, tree, where);
  const config = containerSpec(container.name, process, { args, env, uid, gid }, container.settings, arch);
  const bundle = `${CONTAINERS_DIR}/${container.name}`;
  const rootfs = layerReady(flat.entries, mountPoints(process, container.settings));
  const data = Buffer.from(`${JSON.stringify(config, null, 2)}\n`);
  const entries: ReadEntry[] = [
    dirEntry(bundle),
    { path: `${bundle}/config.json`, type: "file", mode: 0o644, uid: 0, gid: 0, data },
    dirEntry(`${bundle}/rootfs`),
    ...rootfs.map((e) => ({ ...e, path: `${bundle}/rootfs/${e.path}` })),
  ];
  const notes = [`container ${container.name}: ${image.digest} (manifest ${image.manifestDigest}), ${rootfs.length} entries`];
  if (flat.dropped.length) notes.push(`container ${container.name}: left out ${flat.dropped.length} device node(s), FIFO(s) or socket(s) of the image: ${flat.dropped.slice(0, 5).join(", ")}`);
  return { entries, notes };
}
