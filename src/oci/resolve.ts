import { posix } from "node:path";
import { directoriesAbove } from "../core/paths.ts";

/** What `resolveInRoot` needs of a tree's entry. */
export interface TreeEntry {
  type: string;
  target?: string;
}

/** Symbolic links followed before a path counts as a loop (Linux's own limit). */
const MAX_LINKS = 40;

/**
 * Where `path` leads inside a root whose entries `at` returns by path (relative, no leading slash),
 * following symbolic links as the kernel would with that root as `/` (`..` stops at the root); the
 * final path relative to the root, or undefined when a component is missing, a link loops or a file
 * stands where a directory is needed.
 */
export function resolveInRoot(path: string, at: (path: string) => TreeEntry | undefined): string | undefined {
  let pending = path.split("/").filter((p) => p !== "" && p !== ".");
  const done: string[] = [];
  let links = 0;
  while (pending.length) {
    const [part, ...rest] = pending as [string, ...string[]];
    pending = rest;
    if (part === "..") {
      done.pop();
      continue;
    }
    const here = [...done, part].join("/");
    const entry = at(here);
    if (!entry) return undefined;
    if (entry.type === "symlink") {
      if (++links > MAX_LINKS) return undefined;
      const target = entry.target ?? "";
      if (target.startsWith("/")) done.length = 0;
      pending = [...target.split("/").filter((p) => p !== "" && p !== "."), ...pending];
      continue;
    }
    if (pending.length && entry.type !== "dir") return undefined;
    done.push(part);
  }
  return done.join("/");
}

/** A link's target made relative to its own directory, reaching the same place inside the root. */
export function relativeLinkTarget(linkPath: string, target: string): string {
  const dir = posix.dirname(linkPath) === "." ? "" : posix.dirname(linkPath);
  const parts: string[] = target.startsWith("/") ? [] : dir.split("/").filter(Boolean);
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  const relative = posix.relative(`/${dir}`, `/${parts.join("/")}`);
  return relative === "" ? "." : relative;
}

/** A lookup of entries by path for resolveInRoot, where the parents of an entry are directories even when not listed. */
export function treeLookup<E extends TreeEntry>(entries: Iterable<readonly [string, E]>): (path: string) => E | TreeEntry | undefined {
  const byPath = new Map(entries);
  const parents = directoriesAbove(byPath.keys());
  return (path) => byPath.get(path) ?? (parents.has(path) ? { type: "dir" } : undefined);
}
