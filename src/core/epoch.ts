import { InputError } from "./errors.ts";
import { probe } from "./exec.ts";

/** SOURCE_DATE_EPOCH from the environment, else the time of the last commit. */
export async function sourceDateEpoch(projectRoot: string): Promise<number> {
  const fromEnv = process.env.SOURCE_DATE_EPOCH;
  if (fromEnv !== undefined) {
    if (!/^\d+$/.test(fromEnv)) {
      throw new InputError(`SOURCE_DATE_EPOCH='${fromEnv}' is not a whole number of seconds since 1970`);
    }
    return Number(fromEnv);
  }
  const git = await probe("git", ["log", "-1", "--format=%ct"], { cwd: projectRoot });
  const seconds = git.stdout.trim();
  if (git.exitCode !== 0 || !/^\d+$/.test(seconds)) {
    throw new InputError("cannot take SOURCE_DATE_EPOCH from git (not a checkout with commits); set SOURCE_DATE_EPOCH");
  }
  return Number(seconds);
}

/** The commit the tree was built from (org.opencontainers.image.revision), when it is a git checkout. */
export async function sourceRevision(projectRoot: string): Promise<string | undefined> {
  const fromEnv = process.env.BRONZE_REVISION;
  if (fromEnv) return fromEnv;
  const git = await probe("git", ["rev-parse", "HEAD"], { cwd: projectRoot });
  const commit = git.stdout.trim();
  return git.exitCode === 0 && /^[0-9a-f]{40,64}$/.test(commit) ? commit : undefined;
}
