import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InputError, StepError } from "../core/errors.ts";
import { probe } from "../core/exec.ts";
import { runChecks, type CheckInput } from "./engine.ts";
import { decodeInput, parseCmdline, parseKernelConfig, parseSysctl, parseVersion, sysctlArch } from "./inputs.ts";
import { toUpstreamJson, type UpstreamJsonResult } from "./report.ts";
import { ARCHES, type Arch } from "./arches.ts";

export interface CheckFiles {
  config?: string;
  cmdline?: string;
  sysctl?: string;
  arch?: string;
  kernelVersion?: string;
}

export type Engine = "builtin" | "upstream";
export const UPSTREAM_COMMAND = "kernel-hardening-checker";

async function readInput(file: string): Promise<string> {
  const bytes = await readFile(file).catch((e: NodeJS.ErrnoException) => {
    throw new InputError(`${file}: cannot read: ${e.code ?? e.message}`);
  });
  return decodeInput(file, bytes);
}

export function parseArch(text: string): Arch {
  if (!(ARCHES as readonly string[]).includes(text)) throw new InputError(`unknown arch '${text}'; use one of ${ARCHES.join(", ")}`);
  return text as Arch;
}

/** Reads and validates the files; every problem is an InputError naming the file and line. */
export async function loadCheckInput(files: CheckFiles): Promise<CheckInput> {
  if (files.cmdline && !files.config) throw new InputError("--cmdline needs --config: the command-line checks depend on the kernel config");
  if (!files.config && !files.sysctl) throw new InputError("give --config FILE (with --cmdline and --sysctl if wanted), or --sysctl FILE alone");
  if (files.kernelVersion && !files.config) throw new InputError("--kernel-version goes with --config; sysctl checks do not depend on it");
  const wantedArch = files.arch === undefined ? undefined : parseArch(files.arch);
  const sysctl = files.sysctl ? parseSysctl(files.sysctl, await readInput(files.sysctl)) : undefined;
  if (!files.config) return { arch: wantedArch ?? (sysctl && sysctlArch(sysctl)), sysctl };

  const config = parseKernelConfig(files.config, await readInput(files.config));
  if (wantedArch && config.arch && wantedArch !== config.arch) {
    throw new InputError(`${files.config}: is a config for ${config.arch} (CONFIG_${config.arch}=y), not for --arch ${wantedArch}`);
  }
  const arch = wantedArch ?? config.arch;
  if (!arch) throw new InputError(`${files.config}: sets none of ${ARCHES.map((a) => `CONFIG_${a}=y`).join(", ")}; pass --arch`);
  const version = files.kernelVersion ? parseVersion(files.kernelVersion, "--kernel-version") : config.version;
  if (!version) {
    throw new InputError(`${files.config}: has no '# Linux/<arch> X.Y.Z Kernel Configuration' line to tell the kernel version; pass --kernel-version X.Y.Z`);
  }
  const cmdline = files.cmdline ? parseCmdline(files.cmdline, await readInput(files.cmdline)) : undefined;
  return { arch, version, kconfig: config.options, cmdline, sysctl };
}

/** The checks' results in upstream's JSON schema, from bronze's engine or from upstream's own tool on PATH. */
export async function checkFiles(files: CheckFiles, engine: Engine): Promise<{ input: CheckInput; results: UpstreamJsonResult[]; warnings: string[] }> {
  const input = await loadCheckInput(files);
  if (engine === "upstream") return { input, results: await runUpstream(files, input), warnings: [] };
  const run = runChecks(input);
  return { input, results: run.results.map(toUpstreamJson), warnings: run.warnings };
}

/** Runs upstream's kernel-hardening-checker in JSON mode on the same (already validated) files. */
async function runUpstream(files: CheckFiles, input: CheckInput): Promise<UpstreamJsonResult[]> {
  const temp = await mkdtemp(join(tmpdir(), "bronze-harden-"));
  try {
    const args = ["--mode", "json"];
    if (files.config) args.push("--config", files.config);
    if (files.cmdline) args.push("--cmdline", files.cmdline);
    if (files.sysctl) args.push("--sysctl", files.sysctl);
    if (files.kernelVersion && input.version) {
      // upstream reads the version from a /proc/version-style file
      const versionFile = join(temp, "version");
      await writeFile(versionFile, `Linux version ${input.version.join(".")}\n`);
      args.push("--kernel-version", versionFile);
    }
    const run = await probe(UPSTREAM_COMMAND, args);
    if (run.notFound) {
      throw new InputError(`--engine upstream: '${UPSTREAM_COMMAND}' is not on PATH; install it (pip install kernel-hardening-checker) or use the built-in engine`);
    }
    if (run.exitCode !== 0) throw new StepError(`${UPSTREAM_COMMAND} failed (exit ${run.exitCode})`, (run.stderr || run.stdout).slice(-2000));
    try {
      return JSON.parse(run.stdout) as UpstreamJsonResult[];
    } catch {
      throw new StepError(`${UPSTREAM_COMMAND} did not print JSON`, run.stdout.slice(-2000));
    }
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
