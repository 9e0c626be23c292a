import { Option, type Command } from "commander";
import { ARCH_NAMES, HOST_ARCH, archNamed } from "../core/arch.ts";
import { displayPath } from "../core/paths.ts";
import type { CliEnv } from "./commands.ts";

// implementations are imported when a command runs: the CLI starts fast
/** `bronze pkg build|new`: packages of the tree, built on their own or started from a Debian source package. */
export function registerPkgCommands(program: Command, { projectRoot }: CliEnv): void {
  const pkg = program.command("pkg").description("packages (pkgs/NAME/pkg.yaml): build them, or start a new one from a Debian source package");
  pkg
    .command("build")
    .description("build packages and what they depend on, each in its sandbox (from the cache when nothing changed); print where each one's files are")
    .argument("<names...>", "package names (pkgs/NAME)")
    .option("--pkgs <dir>", "also the packages of this directory (NAME/pkg.yaml), which may replace the tree's")
    .addOption(new Option("--arch <arch>", "the architecture to build for (cross-built when it is not the host's)").choices(ARCH_NAMES).default(HOST_ARCH.name))
    .action(async (names: string[], opts: { pkgs?: string; arch: string }) => {
      const { createContext } = await import("../pipeline/context.ts");
      const { buildPackageSet } = await import("../pkgs/build-set.ts");
      const { describeOutputs, outputWeights } = await import("../pkgs/outputs.ts");
      const ctx = createContext(projectRoot, 0);
      let total = 0;
      const { resolve } = await import("node:path");
      await buildPackageSet(names, archNamed(opts.arch), ctx, opts.pkgs ? resolve(opts.pkgs) : undefined, async (a, seconds) => {
        total += seconds;
        console.log(`${a.name} ${a.version}: ${seconds.toFixed(1)} s, ${describeOutputs(await outputWeights(a.dir))} in ${displayPath(a.dir)}`);
      });
      console.log(`built ${names.join(", ")} in ${total.toFixed(1)} s`);
    });
  pkg
    .command("new")
    .description("write pkgs/NAME/pkg.yaml from a Debian source package: its newest version, orig tarball and sha256, patch series, build system, license and changelog time")
    .argument("<source>", "the Debian source package, e.g. libcap-ng")
    .option("--pkgs <dir>", "the packages directory to write into", "pkgs")
    .action(async (source: string, opts: { pkgs: string }) => {
      const { scaffoldPackage } = await import("../pkgs/scaffold.ts");
      const { createContext } = await import("../pipeline/context.ts");
      const { join, resolve } = await import("node:path");
      const ctx = createContext(projectRoot, 0);
      const { file, facts } = await scaffoldPackage(source, resolve(projectRoot, opts.pkgs), ctx.cacheDir, join(ctx.logDir, `pkg-new-${source}.log`));
      console.log(`wrote ${displayPath(file)}: ${facts.source} ${facts.version}, ${facts.system ?? "no known build system"}, license ${facts.license ?? "unknown"}`);
    });
}
