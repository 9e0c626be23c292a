import { relative } from "node:path";

/** A path as messages show it: relative to the working directory when below it, else as given. */
export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith("..") ? rel : path;
}
