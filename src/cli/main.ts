import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { packageVersion } from "../core/version.ts";
import { BronzeError, EXIT_FAILURE, EXIT_USAGE } from "../core/errors.ts";
import { groupsFor } from "./commands.ts";

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The CLI with the commands `commandLine` needs (pipeline/stamp.ts files a build under it). */
export async function createProgram(commandLine: readonly string[] = []): Promise<Command> {
  const program = new Command()
    .name("bronze")
    .description("Builds minimal, immutable Linux OS images: musl userland, read-only SquashFS root, signed kernel modules, UKI.")
    .version(packageVersion(projectRoot))
    .showHelpAfterError()
    .exitOverride();
  const registers = await Promise.all(groupsFor(commandLine).map((group) => group.load()));
  for (const register of registers) register(program, { projectRoot, commandLine });
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  // what bronze writes (cache entries, trees packed into images, outputs) must not depend on the caller's umask
  process.umask(0o022);
  try {
    await (await createProgram(argv)).parseAsync(argv as string[], { from: "user" });
    return Number(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (error instanceof BronzeError) {
      console.error(`bronze: ${error.message}`);
      return error.exitCode;
    }
    console.error("bronze: unexpected error (a bug):", error);
    return EXIT_FAILURE;
  }
}

