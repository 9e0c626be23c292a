import { Option, type Command } from "commander";

// implementations are imported when a command runs: the CLI starts fast
/** `bronze harden check`: kernel-hardening-checker's checks on a kernel config, command line and sysctls. */
export function registerHardenCommands(program: Command): void {
  const harden = program.command("harden").description("kernel hardening checks (kernel-hardening-checker's recommendations)");

  harden
    .command("check")
    .description("check a kernel config (and a command line, and sysctl values) against kernel-hardening-checker's recommendations; exit 0 whatever the verdicts, as upstream")
    .option("-c, --config <file>", "kernel .config (or .config.gz)")
    .option("-l, --cmdline <file>", "kernel command line, one line as /proc/cmdline (needs --config)")
    .option("-s, --sysctl <file>", "sysctl values as 'sysctl -a' prints them")
    .addOption(new Option("--arch <arch>", "architecture, when the config does not say (must agree when it does)").choices(["X86_64", "X86_32", "ARM64", "ARM", "RISCV"]))
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
}
