import { appendFile, mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { StepError } from "./errors.ts";
import { lazyExeca } from "./lazy-execa.ts";

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** replace the environment instead of extending it */
  cleanEnv?: boolean;
  /** append stdout and stderr here instead of returning them */
  logFile?: string;
  input?: string | Uint8Array;
}

const TAIL_LINES = 40;

export async function tailOf(path: string, lines = TAIL_LINES): Promise<string> {
  const text = await readFile(path, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** How a probe ended and what it printed (`all`: stdout and stderr as they came). */
export interface ProbeResult {
  exitCode: number | undefined;
  stdout: string;
  all: string;
}

/** Runs a command whose failure is an answer, not an error (is git there, which version is a tool). */
export async function probe(command: string, args: readonly string[], options: Pick<RunOptions, "cwd" | "env"> = {}): Promise<ProbeResult> {
  const result = await (await lazyExeca())(command, args, { cwd: options.cwd, env: options.env, reject: false, all: true, stdin: "ignore", encoding: "utf8" });
  return { exitCode: result.exitCode, stdout: String(result.stdout ?? ""), all: String(result.all ?? "") };
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
    stdout: logFile ? { file: logFile, append: true } : "pipe",
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
