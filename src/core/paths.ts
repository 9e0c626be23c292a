import { relative } from "node:path";

/** A path as messages show it: relative to the working directory when below it, else as given. */
export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith("..") ? rel : path;
}

/** Every directory above the relative paths given, parents included ("a/b/c" gives "a" and "a/b"). */
export function directoriesAbove(paths: Iterable<string>): Set<string> {
  return new Set([...paths].flatMap((path) => path.split("/").slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join("/"))));
}
