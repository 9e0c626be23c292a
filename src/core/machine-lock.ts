// Work that must not run twice at once on one machine, whichever bronze process (or test) asks: a kernel
// build takes every core, and two of them side by side take twice as long as one after the other, each.
import { appendFile } from "node:fs/promises";
import { join } from "node:path";
import { startHolding } from "./exec.ts";

/** Where the lock is: one file for the machine (not TMPDIR, which builds set apart from each other). */
export function machineLockPath(name: string): string {
  return join(process.env.BRONZE_LOCK_DIR ?? "/var/tmp", `bronze-${name}.lock`);
}

const HELD = "held";

/**
 * Runs `work` holding the machine's lock `name` (flock(1) on machineLockPath); `waiting` is told once when
 * another process holds it, before this one waits its turn.
 */
export async function withMachineLock<T>(name: string, waiting: (path: string) => void, work: () => Promise<T>): Promise<T> {
  const path = machineLockPath(name);
  const holdArgs = (wait: boolean) => [...(wait ? [] : ["--nonblock"]), "--exclusive", path, "sh", "-c", `echo ${HELD}; exec cat >/dev/null`];
  let lock = await startHolding("flock", holdArgs(false), HELD).catch(() => undefined);
  if (!lock) {
    // held elsewhere (flock --nonblock gave up): say so, then wait for it
    waiting(path);
    lock = await startHolding("flock", holdArgs(true), HELD);
  }
  try {
    return await work();
  } finally {
    await lock.release();
  }
}

/** The compile or seal of a kernel under the machine's kernel-build lock; a wait for it is noted in `logFile`. */
export function withKernelBuildLock<T>(logFile: string, work: () => Promise<T>): Promise<T> {
  return withMachineLock("kernel-build", (lock) => void appendFile(logFile, `waiting for another kernel build on this machine (${lock})\n`), work);
}
