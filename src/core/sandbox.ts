import { lstat, mkdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { run } from "./exec.ts";

/** A host directory made visible inside the sandbox. */
export interface Mount {
  host: string;
  at: string;
  writable?: boolean;
}

/**
 * A directory the sandbox sees writable at `at` while it stays untouched: overlayfs, mounted inside the
 * sandbox, puts every write in `changes` (see overlayUpper), so a gigabyte tree needs no copy.
 */
export interface Overlay {
  lower: string;
  changes: string;
  at: string;
}

/** Where an overlay's writes are, on the host: the files the sandbox wrote or changed, and nothing else. */
export const overlayUpper = (changes: string): string => join(changes, "upper");
const overlayWork = (changes: string): string => join(changes, "work");

export interface SandboxOptions {
  mounts: readonly Mount[];
  overlays?: readonly Overlay[];
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
  const overlays = options.overlays ?? [];
  overlays.forEach((o, i) => args.push("--ro-bind", o.lower, `${OVERLAY_ROOT}/${i}/lower`, "--bind", o.changes, `${OVERLAY_ROOT}/${i}/rw`, "--dir", o.at));
  // the mounts need CAP_SYS_ADMIN in the sandbox's user namespace; the script itself runs without any capability
  if (overlays.length) args.push("--cap-add", "CAP_SYS_ADMIN");
  const env = { PATH: "/usr/local/bin:/usr/bin:/usr/sbin", HOME: "/tmp", LC_ALL: "C.UTF-8", TZ: "UTC", ...options.env };
  for (const [name, value] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    args.push("--setenv", name, value);
  }
  args.push("--chdir", overlays.length ? "/" : options.cwd);
  return args;
}

const OVERLAY_ROOT = "/.bronze-overlay";
/** `text` as one word of a shell script. */
export const shellQuote = (text: string): string => `'${text.replaceAll("'", "'\\''")}'`;

/** The command bwrap runs: the script, after mounting the overlays and dropping every capability. */
function sandboxCommand(script: string, options: SandboxOptions): string[] {
  const overlays = options.overlays ?? [];
  if (!overlays.length) return ["/bin/sh", "-euc", script];
  const mounts = overlays.map((o, i) => {
    const at = `${OVERLAY_ROOT}/${i}`;
    const how = `lowerdir=${at}/lower,upperdir=${at}/rw/upper,workdir=${at}/rw/work`;
    const explain = `bronze: overlayfs could not be mounted at ${o.at} in the sandbox (it needs Linux 5.11 or later with user namespaces)`;
    return `mount -t overlay overlay -o ${how} ${shellQuote(o.at)} || { echo ${shellQuote(explain)} >&2; exit 1; }`;
  });
  const drop = 'exec setpriv --bounding-set -all --inh-caps -all --no-new-privs /bin/sh -euc "$1"';
  return ["/bin/sh", "-euc", [...mounts, `cd ${shellQuote(options.cwd)}`, drop].join("\n"), "sh", script];
}

/** Runs a shell script (with `set -eu`) inside the sandbox. */
export async function runSandboxed(script: string, options: SandboxOptions): Promise<void> {
  for (const o of options.overlays ?? []) {
    await mkdir(overlayUpper(o.changes), { recursive: true });
    await mkdir(overlayWork(o.changes), { recursive: true });
  }
  const args = await sandboxArgs(options);
  await run("bwrap", [...args, ...sandboxCommand(script, options)], { logFile: options.logFile });
}
