import { appendFile, mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { execa } from "execa";
import { StepError } from "./errors.ts";

/** execa, loaded on first use: commands that never run a process start without it (it costs ~0.2 s). */
async function lazyExeca(): Promise<typeof execa> {
  return (await import("execa")).execa;
}

export interface RunOptions {
  cwd?: string;
  /** added to the environment; a variable given as undefined is removed from it */
  env?: Record<string, string | undefined>;
  /** replace the environment instead of extending it */
  cleanEnv?: boolean;
  /** append stdout and stderr here instead of returning them */
  logFile?: string;
  input?: string | Uint8Array;
  /** write stdout to this file (for tools that only write to stdout); stderr is still returned on failure */
  stdoutFile?: string;
}

const TAIL_LINES = 40;

export async function tailOf(path: string, lines = TAIL_LINES): Promise<string> {
  const text = await readFile(path, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** How a probe ended and what it printed (`all`: stdout and stderr as they came). */
export interface ProbeResult {
  exitCode: number | undefined;
  /** the command is not on PATH (or not there at all) */
  notFound: boolean;
  stdout: string;
  stderr: string;
  all: string;
}

export interface ProbeOptions extends Pick<RunOptions, "cwd" | "env"> {
  /** killed after this long (its exit code is then undefined) */
  timeoutMs?: number;
}

/** Runs a command whose failure is an answer, not an error (is git there, which version is a tool). */
export async function probe(command: string, args: readonly string[], options: ProbeOptions = {}): Promise<ProbeResult> {
  const { cwd, env, timeoutMs } = options;
  const result = await (await lazyExeca())(command, args, { cwd, env, timeout: timeoutMs, reject: false, all: true, stdin: "ignore", encoding: "utf8" });
  const notFound = (result as { code?: string }).code === "ENOENT";
  return { exitCode: result.exitCode, notFound, stdout: String(result.stdout ?? ""), stderr: String(result.stderr ?? ""), all: String(result.all ?? "") };
}

/** A process that runs beside its caller (a VM on a serial console): its output as it comes, and its end. */
export interface Started {
  /** how it ended: by itself or killed */
  ended: Promise<{ exitCode?: number; signal?: string }>;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts a command whose stdout and stderr go, chunk by chunk as they come, to `onOutput`; `env` adds to the environment. */
export async function start(command: string, args: readonly string[], onOutput: (chunk: string) => void, env?: Record<string, string>): Promise<Started> {
  const child = (await lazyExeca())(command, args, { reject: false, stdin: "ignore", buffer: false, encoding: "utf8", env });
  const forward = (chunk: Buffer | string) => onOutput(chunk.toString());
  child.stdout?.on("data", forward);
  child.stderr?.on("data", forward);
  const ended = child.then((result) => ({ exitCode: result.exitCode, signal: result.signal }));
  return { ended, kill: (signal = "SIGKILL") => void child.kill(signal) };
}

/** Runs a command; on failure throws a StepError carrying the end of its output. */
export async function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const { logFile } = options;
  if (logFile) {
    await mkdir(dirname(logFile), { recursive: true });
    await appendFile(logFile, `+ ${[command, ...args].join(" ")}\n`);
  }
  const result = await (await lazyExeca())(command, args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: !options.cleanEnv,
    reject: false,
    all: true,
    stdin: options.input === undefined ? "ignore" : "pipe",
    input: options.input,
    stdout: options.stdoutFile ? { file: options.stdoutFile } : logFile ? { file: logFile, append: true } : "pipe",
    stderr: logFile ? { file: logFile, append: true } : "pipe",
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.failed) {
    const reason = result.exitCode === undefined ? (result.signal ?? result.shortMessage) : `exit code ${result.exitCode}`;
    const tail = logFile ? await tailOf(logFile) : String(result.all ?? "").trimEnd().split("\n").slice(-TAIL_LINES).join("\n");
    throw new StepError(`${command} failed (${reason})${logFile ? `; full log: ${logFile}` : ""}`, tail);
  }
  return String(result.stdout ?? "");
}

/**
 * Starts a command that holds something (a lock) while its stdin stays open: resolves once it has printed
 * `ready` on stdout, with `release`, which closes its stdin and waits for its end. If this process dies
 * first, the pipe closes all the same, so nothing is held after it.
 */
export async function startHolding(command: string, args: readonly string[], ready: string): Promise<{ release: () => Promise<void> }> {
  const child = (await lazyExeca())(command, args, { reject: false, stdin: "pipe", stdout: "pipe", stderr: "pipe", buffer: false, encoding: "utf8" });
  let stderr = "";
  child.stderr?.on("data", (c: Buffer | string) => (stderr += c.toString()));
  const seen = new Promise<boolean>((resolve) => {
    let out = "";
    child.stdout?.on("data", (c: Buffer | string) => {
      out += c.toString();
      if (out.split("\n").includes(ready)) resolve(true);
    });
    void child.then(() => resolve(false));
  });
  if (!(await seen)) throw new StepError(`${command} ended before it held (${(await child).exitCode ?? "killed"})`, stderr.trim());
  return {
    release: async () => {
      child.stdin?.end();
      await child;
    },
  };
}
