import { Option, type Command } from "commander";
import { ARCH_NAMES } from "../core/arch.ts";
import { BronzeError, EXIT_FAILURE } from "../core/errors.ts";
import type { CliEnv } from "./commands.ts";

/** `bronze repro`: build twice in different surroundings and compare every artifact. */
export function registerReproCommand(program: Command, { projectRoot }: CliEnv): void {
  program
    .command("repro")
    .description(
      "build a profile twice from two copies of this checkout (different path, time, TMPDIR, user, host name, umask, time zone, locale; fresh caches, " +
        "each its own ephemeral module key) and compare: packages byte for byte, kernel and modules with signatures stripped and the certificate masked, " +
        "then every published artifact, the installer digest and a disk image of a third build around the first build's kernel",
    )
    .option("-p, --profile <name|file>", "profile name or file inside the checkout", "default")
    .option("--first-cache <dir>", "the first build uses this cache (e.g. the one `make` filled) instead of a fresh one: one kernel build instead of two")
    .option("--keep", "keep the work directory (it is kept anyway when something differs)")
    .addOption(new Option("--arch <arch>", "build for this architecture (bronze build --arch; default: the profile's)").choices(ARCH_NAMES))
    .action(async (opts: { profile: string; firstCache?: string; keep?: boolean; arch?: string }) => {
      const { loadProfile, outputDirName, profileForArch, profilePath } = await import("../profile/profile.ts");
      const loaded = await loadProfile(profilePath(projectRoot, opts.profile));
      const profile = opts.arch ? await profileForArch(loaded, opts.arch) : loaded;
      const { checkReproducible } = await import("../repro/run.ts");
      const log = (line: string) => console.log(`repro: ${line}`);
      const result = await checkReproducible({ projectRoot, profile: opts.profile, outDirName: outputDirName(profile), arch: opts.arch, firstCache: opts.firstCache, keep: opts.keep, log });
      for (const group of result.groups) {
        const identical = group.files.filter((f) => f.verdict.status === "identical");
        console.log(`\n${group.title}: ${identical.length} of ${group.files.length} identical`);
        for (const f of group.files) {
          if (f.verdict.status === "different") console.log(`  DIFFERENT   ${f.path}: ${f.verdict.detail}`);
          else if (f.verdict.status === "equivalent") console.log(`  equivalent  ${f.path}: ${f.verdict.how}`);
          else if (group.listIdentical) console.log(`  identical   ${f.path}`);
        }
      }
      const [digestA, digestC] = result.installerDigests;
      console.log(`\ninstaller index digest: ${digestA} (A), ${digestC} (C)${digestA === digestC ? ", identical" : ", DIFFERENT"}`);
      if (result.differences > 0) {
        throw new BronzeError(`not reproducible: ${result.differences} difference(s), listed above; the builds and repro.json are in ${result.workDir}`, EXIT_FAILURE);
      }
      console.log(`reproducible: profile ${profile.name} (${profile.arch})${opts.keep ? `; builds kept in ${result.workDir}` : ""}`);
    });
}
