import { Option, type Command } from "commander";
import { ARCH_NAMES } from "../core/arch.ts";
import { displayPath } from "../core/paths.ts";
import type { CliEnv } from "./commands.ts";

// implementations are imported when a command runs: the CLI starts fast
/** `bronze profile show`: what a profile resolves to, and its ID, without building it. */
export function registerProfileCommands(program: Command, { projectRoot }: CliEnv): void {
  const profile = program.command("profile").description("image profiles");
  profile
    .command("show")
    .description("print what a profile resolves to (its base's image with its own additions) and its ID, without building")
    .argument("<profile>", "profile name (profiles/<name>.yaml) or path to a profile file")
    .option("--json", "the resolved profile as JSON")
    .addOption(new Option("--arch <arch>", "as `bronze build --arch` resolves it for that architecture").choices(ARCH_NAMES))
    .action(async (nameOrFile: string, opts: { json?: boolean; arch?: string }) => {
      const { loadProfile, profileForArch, profilePath } = await import("../profile/profile.ts");
      const loaded = await loadProfile(profilePath(projectRoot, nameOrFile));
      const p = opts.arch ? await profileForArch(loaded, opts.arch) : loaded;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(p, null, 2)}\n`);
        return;
      }
      const list = (items: readonly string[]) => (items.length ? items.join(", ") : "(none)");
      const lines: [string, string][] = [
        ["profile", `${p.name}${p.description ? ` — ${p.description}` : ""}`],
        ["id", p.id],
        ["read from", p.files.map(displayPath).join(" <- ")],
        ["image", p.base ? `${p.baseImage} (base ${p.base})` : p.baseImage],
        ["arch", p.arch],
        ["kernel", `profile ${p.kernelProfile}${p.kernelExtraConfig.length ? `, fragments ${p.kernelExtraConfig.map(displayPath).join(", ")}` : ""}`],
        ["extension modules", list(p.kernelExtensionModules)],
        ["packages", list(p.packages)],
        ["cmdline", p.cmdline],
        ["outputs", list(p.outputs)],
        ["extensions", list(p.extensions.map((e) => (e.kind === "build" ? displayPath(e.dir) : e.kind === "image" ? `${displayPath(e.source)}@${e.digest}` : `${e.reference}`)))],
        ["trusted keys", list(p.trustedKeys.map(displayPath))],
        ["allowed unsigned", list(p.allowUnsigned)],
        ["Talos-built", list(p.talosExtensions)],
        ["hardening gate", list(p.hardeningDecisions)],
        ["size budget", p.sizeBudgetPercent === undefined ? "(none)" : `${p.sizeBudgetPercent} %`],
      ];
      for (const [key, value] of lines) console.log(`${`${key}:`.padEnd(19)} ${value}`);
    });
}
