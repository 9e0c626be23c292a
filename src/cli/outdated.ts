import type { Command } from "commander";
import type { CliEnv } from "./commands.ts";

/** `bronze outdated`: which pins the archive offers something newer for. */
export function registerOutdatedCommand(program: Command, { projectRoot }: CliEnv): void {
  program
    .command("outdated")
    .description("every pin (Debian source packages, the kernel's source package and series, the systemd-stub, the hardening rules' upstream) against the newest the configured archive offers; exit 1 when one is behind")
    .option("--json", "the rows as JSON")
    .action(async (opts: { json?: boolean }) => {
      const { outdatedPins } = await import("../sources/outdated.ts");
      const rows = await outdatedPins(projectRoot);
      if (opts.json) {
        console.log(JSON.stringify(rows, null, 2));
      } else {
        for (const r of rows) console.log(`${r.behind ? "BEHIND " : "current"} ${r.pin}: ${r.pinned}${r.newest && r.behind ? ` -> ${r.newest}` : ""}${r.note ? ` (${r.note})` : ""}`);
        const behind = rows.filter((r) => r.behind).length;
        console.log(`${behind} of ${rows.length} pins behind the archive`);
      }
      if (rows.some((r) => r.behind)) process.exitCode = 1;
    });
}
