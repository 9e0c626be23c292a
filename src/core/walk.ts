import { readdirSync } from "node:fs";

export interface TreeEntry {
  /** the path below the walked directory, '/'-separated */
  rel: string;
  kind: "directory" | "file" | "symlink" | "other";
}

/**
 * Every entry below `dir`, each directory before what it holds, in a fixed order; symlinks are not
 * followed. Synchronous and by hand: for the few hundred entries of a package, Node's recursive readdir
 * (a stat per entry, path arithmetic) cost more than what is done with them.
 */
export function walkTree(dir: string): TreeEntry[] {
  const found: TreeEntry[] = [];
  const visit = (path: string, prefix: string): void => {
    const entries = readdirSync(path, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const entry of entries) {
      const rel = prefix + entry.name;
      const kind = entry.isDirectory() ? "directory" : entry.isFile() ? "file" : entry.isSymbolicLink() ? "symlink" : "other";
      found.push({ rel, kind });
      if (kind === "directory") visit(`${path}/${entry.name}`, `${rel}/`);
    }
  };
  visit(dir, "");
  return found;
}
