import type { Command } from "commander";
import { EXIT_FAILURE } from "../core/errors.ts";
import { HOST_REQUIREMENTS, missingRequirements } from "../core/tools.ts";

/** `bronze doctor`: the host tools bronze needs that are missing, with their Debian packages. */
export function registerDoctorCommand(program: Command): void {
  program
    .command("doctor")
    .description("list the host tools bronze needs that are missing, and the Debian package that provides each")
    .action(async () => {
      const missing = await missingRequirements();
      if (missing.length === 0) {
        console.log(`bronze doctor: all ${HOST_REQUIREMENTS.length} host requirements are present`);
        return;
      }
      console.log(`bronze doctor: ${missing.length} of ${HOST_REQUIREMENTS.length} host requirements missing:`);
      for (const m of missing) console.log(`  ${m.name.padEnd(20)} apt-get install ${m.debianPackage.padEnd(18)} (${m.purpose})`);
      const packages = [...new Set(missing.map((m) => m.debianPackage))].join(" ");
      console.log(`fix: apt-get install ${packages}   (or run 'make', which installs them)`);
      process.exitCode = EXIT_FAILURE;
    });
}
