// An OCI image's layers applied in order into one tree, as the image-spec's layer changesets define:
// whiteouts (.wh.NAME) delete what a lower layer had, an opaque whiteout (.wh..wh..opq) empties a
// directory of the lower layers' entries. Pure: entries in, entries out.
import { posix } from "node:path";
import { InputError } from "../core/errors.ts";
import type { ReadEntry } from "./tar-read.ts";

const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";

export interface FlatTree {
  /** every entry of the tree, parents before children, sorted by path */
  entries: ReadEntry[];
  /** device nodes, FIFOs and sockets of the layers, left out */
  dropped: string[];
}

/** The path of a layer entry, normalized; an absolute path or one that climbs out of the root is refused. */
function entryPath(path: string, where: string): string {
  const normal = posix.normalize(path.replace(/^\/+/, ""));
  if (normal === ".." || normal.startsWith("../") || path.split("/").includes("..")) {
    throw new InputError(`${where}: entry '${path}' climbs out of the image's root ('..'): the layer is malformed or hostile`);
  }
  return normal === "." ? "" : normal.replace(/\/$/, "");
}

const isUnder = (path: string, dir: string) => dir === "" || path.startsWith(`${dir}/`);

/** Removes `path` and everything under it. */
function removeTree(tree: Map<string, ReadEntry>, path: string): void {
  for (const key of [...tree.keys()]) if (key === path || isUnder(key, path)) tree.delete(key);
}

/**
 * The layers (each an archive's entries, lowest first) as one tree. Hard links become copies of the
 * file they name; device nodes, FIFOs and sockets are left out and listed (a container's /dev is its
 * runtime's). `where(i)` names layer i in errors.
 */
export function flattenLayers(layers: readonly (readonly ReadEntry[])[], where: (layer: number) => string): FlatTree {
  const tree = new Map<string, ReadEntry>();
  const dropped: string[] = [];
  layers.forEach((layer, i) => {
    const paths = layer.map((e) => ({ entry: e, path: entryPath(e.path, where(i)) }));
    // a layer's whiteouts hide what the layers below had, not what the layer itself adds
    for (const { path } of paths) {
      const name = posix.basename(path);
      const dir = posix.dirname(path) === "." ? "" : posix.dirname(path);
      if (name === OPAQUE) {
        for (const key of [...tree.keys()]) if (isUnder(key, dir)) tree.delete(key);
      } else if (name.startsWith(WHITEOUT)) {
        removeTree(tree, posix.join(dir, name.slice(WHITEOUT.length)));
      }
    }
    for (const { entry, path } of paths) {
      if (path === "" || posix.basename(path).startsWith(WHITEOUT)) continue;
      if (!["file", "dir", "symlink", "hardlink"].includes(entry.type)) {
        dropped.push(path);
        continue;
      }
      const earlier = tree.get(path);
      // a directory stays a directory (its entries stay); anything else replaces what was there
      if (earlier && !(earlier.type === "dir" && entry.type === "dir")) removeTree(tree, path);
      if (entry.type === "hardlink") {
        const target = tree.get(entryPath(entry.target ?? "", where(i)));
        if (target?.type !== "file") throw new InputError(`${where(i)}: hard link '${path}' names '${entry.target ?? ""}', which is no file of the layers so far`);
        tree.set(path, { ...target, path });
      } else {
        tree.set(path, { ...entry, path });
      }
    }
  });
  const entries = [...tree.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { entries, dropped };
}
