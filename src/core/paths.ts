import { relative } from "node:path";

/** A path as messages show it: relative to the working directory when below it, else as given. */
export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith("..") ? rel : path;
}

/** Every directory above the relative paths given, parents included ("a/b/c" gives "a" and "a/b"). */
export function directoriesAbove(paths: Iterable<string>): Set<string> {
  const directories = new Set<string>();
  for (const path of paths) {
    for (let end = path.indexOf("/"); end > 0; end = path.indexOf("/", end + 1)) directories.add(path.slice(0, end));
  }
  return directories;
}
