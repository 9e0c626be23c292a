import type { Command } from "commander";

export interface CliEnv {
  projectRoot: string;
  /** the arguments as given, which a build's stamp is filed under (pipeline/stamp.ts) */
  commandLine: readonly string[];
}

type Register = (program: Command, env: CliEnv) => void;

/** Top-level commands registered by one module, which is loaded only when one of them runs. */
export interface CommandGroup {
  names: readonly string[];
  load: () => Promise<Register>;
}

// in the order help lists them
export const COMMAND_GROUPS: readonly CommandGroup[] = [
  { names: ["build"], load: async () => (await import("./build.ts")).registerBuildCommand },
  { names: ["boot"], load: async () => (await import("./boot.ts")).registerBootCommand },
  { names: ["kernel"], load: async () => (await import("./kernel.ts")).registerKernelCommands },
  { names: ["harden"], load: async () => (await import("./harden.ts")).registerHardenCommands },
  { names: ["vuln"], load: async () => (await import("./vuln.ts")).registerVulnCommands },
  { names: ["secureboot"], load: async () => (await import("./secureboot.ts")).registerSecureBootCommands },
  { names: ["keys"], load: async () => (await import("./secureboot.ts")).registerKeysCommands },
  { names: ["image", "upgrade"], load: async () => (await import("./image.ts")).registerImageCommands },
  { names: ["extension"], load: async () => (await import("./extension.ts")).registerExtensionCommands },
  { names: ["pkg"], load: async () => (await import("./pkg.ts")).registerPkgCommands },
  { names: ["push", "pull"], load: async () => (await import("./oci.ts")).registerOciCommands },
  { names: ["sign", "verify"], load: async () => (await import("./sign.ts")).registerSignCommands },
  { names: ["factory"], load: async () => (await import("./factory.ts")).registerFactoryCommands },
  { names: ["repro"], load: async () => (await import("./repro.ts")).registerReproCommand },
  { names: ["cache"], load: async () => (await import("./cache.ts")).registerCacheCommands },
  { names: ["profile"], load: async () => (await import("./profile.ts")).registerProfileCommands },
  { names: ["outdated"], load: async () => (await import("./outdated.ts")).registerOutdatedCommand },
  { names: ["doctor"], load: async () => (await import("./doctor.ts")).registerDoctorCommand },
];

/** What a command line needs loaded: its command's group alone, or all of them (help, or a typo to suggest for). */
export function groupsFor(commandLine: readonly string[]): readonly CommandGroup[] {
  const first = commandLine[0];
  const group = first === undefined ? undefined : COMMAND_GROUPS.find((g) => g.names.includes(first));
  return group ? [group] : COMMAND_GROUPS;
}
