import { join } from "node:path";
import { Option, type Command } from "commander";
import { DEFAULT_ARCH } from "../core/arch.ts";
import { ARCHES } from "../harden/arches.ts";
import type { CliEnv } from "./commands.ts";

// implementations are imported when a command runs: the CLI starts fast
/** `bronze harden check`: kernel-hardening-checker's checks on a kernel config, command line and sysctls. */
export function registerHardenCommands(program: Command, { projectRoot }: CliEnv): void {
  const harden = program.command("harden").description("kernel hardening checks (kernel-hardening-checker's recommendations)");

  harden
    .command("check")
    .description("check a kernel config (and a command line, and sysctl values) against kernel-hardening-checker's recommendations; exit 0 whatever the verdicts, as upstream")
    .option("-c, --config <file>", "kernel .config (or .config.gz)")
    .option("-l, --cmdline <file>", "kernel command line, one line as /proc/cmdline (needs --config)")
    .option("-s, --sysctl <file>", "sysctl values as 'sysctl -a' prints them")
    .addOption(new Option("--arch <arch>", "architecture, when the config does not say (must agree when it does)").choices(ARCHES))
    .option("--kernel-version <x.y.z>", "kernel version, when the config has no version line")
    .option("--json", "print upstream's JSON (kernel-hardening-checker --mode json), byte for byte")
    .addOption(new Option("--engine <engine>", "builtin, or upstream: run kernel-hardening-checker from PATH").choices(["builtin", "upstream"]).default("builtin"))
    .action(async (opts: { config?: string; cmdline?: string; sysctl?: string; arch?: string; kernelVersion?: string; json?: boolean; engine: "builtin" | "upstream" }) => {
      const { checkFiles } = await import("../harden/check.ts");
      const { resultTable, tally, upstreamJsonText } = await import("../harden/report.ts");
      const { UPSTREAM } = await import("../harden/rules.ts");
      const { results, warnings } = await checkFiles(opts, opts.engine);
      if (opts.json) {
        process.stdout.write(upstreamJsonText(results));
        return;
      }
      for (const w of warnings) console.error(`bronze: warning: ${w}`);
      console.log(resultTable(results));
      const t = tally(results);
      const engine = opts.engine === "upstream" ? "upstream kernel-hardening-checker" : `built-in engine, ${UPSTREAM.project} ${UPSTREAM.release} rules`;
      console.log(`\n${t.checks} checks: OK ${t.ok}, FAIL ${t.fail} (${engine})`);
    });

  harden
    .command("gate")
    .description("the build's hardening gate on given files: exit 1 on FAIL in the decision groups unless a reviewed exception covers it, or on a stale exception")
    .requiredOption("-c, --config <file>", "kernel .config (or .config.gz)")
    .option("-l, --cmdline <file>", "kernel command line, one line as /proc/cmdline")
    .option("-s, --sysctl <file>", "sysctl values as 'sysctl -a' prints them")
    .addOption(new Option("--arch <arch>", "architecture, when the config does not say").choices(ARCHES))
    .option("--kernel-version <x.y.z>", "kernel version, when the config has no version line")
    .option("--exceptions <file>", "reviewed exceptions (default: kernel/hardening/exceptions.yaml)")
    .option("--decisions <list>", "decision groups to enforce, comma-separated", "defconfig,kspp")
    .option("--kernel-profile <name>", "the kernel profile, for exceptions limited to some", "default")
    .action(async (opts: { config: string; cmdline?: string; sysctl?: string; arch?: string; kernelVersion?: string; exceptions?: string; decisions: string; kernelProfile: string }) => {
      const { checkFiles } = await import("../harden/check.ts");
      const { applyGate, gateFailureMessage, loadExceptions, parseDecisions } = await import("../harden/gate.ts");
      const { hardeningArch } = await import("../harden/build-gate.ts");
      const { BronzeError } = await import("../core/errors.ts");
      const { results, input } = await checkFiles(opts, "builtin");
      const exceptions = await loadExceptions(opts.exceptions ?? join(projectRoot, "kernel", "hardening", "exceptions.yaml"));
      const complete = Boolean(opts.cmdline && opts.sysctl);
      const scope = { arch: input.arch ?? hardeningArch(DEFAULT_ARCH.name), kernelProfile: opts.kernelProfile, decisions: parseDecisions(opts.decisions), complete };
      const verdict = applyGate(results, input, exceptions, scope);
      for (const { result, exception } of verdict.suppressed) console.log(`suppressed ${result.option_name}: ${result.check_result} (${exception.where}: ${exception.reason})`);
      console.log(`${verdict.checked} checks: OK ${verdict.ok}, FAIL ${verdict.checked - verdict.ok} (${verdict.suppressed.length} suppressed, ${verdict.ungated.length} not gated, ${verdict.failures.length} failing the gate)`);
      if (!verdict.passed) throw new BronzeError(gateFailureMessage(verdict, scope, opts.config));
    });
}
