import { join } from "node:path";
import { execa, type Result } from "execa";
import { PROJECT_ROOT } from "./tmp.ts";

/** Runs the real CLI as a user would, through bin/bronze. */
export function bronze(args: readonly string[], env: Record<string, string> = {}): Promise<Result> {
  return execa(join(PROJECT_ROOT, "bin", "bronze"), args, {
    cwd: PROJECT_ROOT,
    reject: false,
    env: { CI: "true", ...env },
    all: true,
  });
}
