import { join } from "node:path";
import { Option, type Command } from "commander";
import { ARCH_NAMES, DEFAULT_ARCH } from "../core/arch.ts";
import { sourceDateEpoch } from "../core/epoch.ts";
import type { CliEnv } from "./commands.ts";

/** `bronze kernel config`: the resolved config of a kernel profile, without building. */
export function registerKernelCommands(program: Command, { projectRoot }: CliEnv): void {
  const kernel = program.command("kernel").description("kernel tools");
  kernel
    .command("config")
    .description("print the normalised kernel config of a kernel profile (fragments merged, resolved, verified)")
    .option("-p, --profile <name>", "kernel profile (kernel/config/profiles/<name>.config)", "minimal")
    .addOption(new Option("--arch <arch>", "architecture").choices(ARCH_NAMES).default(DEFAULT_ARCH.name))
    .action(async (opts: { profile: string; arch: string }) => {
      const { loadKernelSource } = await import("../kernel/source.ts");
      const { createContext } = await import("../pipeline/context.ts");
      const source = await loadKernelSource(join(projectRoot, "kernel"));
      const ctx = createContext(projectRoot, await sourceDateEpoch(projectRoot));
      const { resolveKernelConfig } = await import("../kernel/build.ts");
      process.stdout.write(await resolveKernelConfig(source, { arch: opts.arch, profile: opts.profile, extraConfig: [], modules: [] }, ctx));
    });
}
