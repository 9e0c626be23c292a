import { lstat, readlink } from "node:fs/promises";
import { run } from "./exec.ts";

/** A host directory made visible inside the sandbox. */
export interface Mount {
  host: string;
  at: string;
  writable?: boolean;
}

export interface SandboxOptions {
  mounts: readonly Mount[];
  cwd: string;
  env: Record<string, string>;
  logFile: string;
}

/** Host directories every build may read: the toolchain, nothing of the user's. */
const HOST_READ_ONLY = ["/usr", "/etc"];
const TOP_LEVEL_LINKS = ["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"];

async function topLevelArgs(): Promise<string[]> {
  const args: string[] = [];
  for (const dir of TOP_LEVEL_LINKS) {
    const info = await lstat(dir).catch(() => undefined);
    if (!info) continue;
    if (info.isSymbolicLink()) args.push("--symlink", await readlink(dir), dir);
    else args.push("--ro-bind", dir, dir);
  }
  return args;
}

/**
 * Arguments for bubblewrap: no network (a fresh network namespace), a private
 * /tmp, the host toolchain read-only, and only the given mounts besides.
 */
export async function sandboxArgs(options: Omit<SandboxOptions, "logFile">): Promise<string[]> {
  const args = ["--unshare-all", "--die-with-parent", "--new-session", "--clearenv"];
  for (const dir of HOST_READ_ONLY) args.push("--ro-bind", dir, dir);
  args.push(...(await topLevelArgs()));
  args.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp");
  for (const m of options.mounts) args.push(m.writable ? "--bind" : "--ro-bind", m.host, m.at);
  const env = { PATH: "/usr/local/bin:/usr/bin:/usr/sbin", HOME: "/tmp", LC_ALL: "C.UTF-8", TZ: "UTC", ...options.env };
  for (const [name, value] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    args.push("--setenv", name, value);
  }
  args.push("--chdir", options.cwd);
  return args;
}

/** Runs a shell script (with `set -eu`) inside the sandbox. */
export async function runSandboxed(script: string, options: SandboxOptions): Promise<void> {
  const args = await sandboxArgs(options);
  await run("bwrap", [...args, "/bin/sh", "-euc", script], { logFile: options.logFile });
}
