import { posix } from "node:path";
import { FieldReader, YamlFile } from "../core/yamlfile.ts";

/**
 * The service files init reads and their limits, as pkgs/init/src/service-format.h defines them for init
 * (test/pkgs/init.test.ts holds the two to the same values).
 */
export const SERVICE_FORMAT = {
  /** in the image, without the leading slash: where an extension declares services (NAME.yaml) and bronze writes init's NAME.service */
  dir: "usr/lib/bronze/services/",
  suffix: ".service",
  maxServices: 16,
  maxName: 63,
  maxArgs: 32,
  /** bytes of the command path, and of all arguments with a NUL after each */
  maxCommand: 255,
  maxArgsBytes: 4096,
} as const;
export const SERVICES_DIR = SERVICE_FORMAT.dir;

/** A service definition an extension declares (a NAME.yaml file in the services directory). */
export const isServiceDefinition = (entry: { type: string; path: string }): boolean =>
  entry.type === "file" && entry.path.startsWith(SERVICES_DIR) && entry.path.endsWith(".yaml");
const RESTART = ["always", "on-failure", "never"] as const;
const NAME = new RegExp(`^[a-z0-9][a-z0-9-]{0,${SERVICE_FORMAT.maxName - 1}}$`);

export interface ServiceDefinition {
  name: string;
  /** absolute path of the program in the image */
  command: string;
  args: string[];
  restart: (typeof RESTART)[number];
}

/** A service definition (usr/lib/bronze/services/NAME.yaml); errors name the file and line. */
export function parseServiceDefinition(where: string, fileName: string, text: string): ServiceDefinition {
  const yaml = YamlFile.parse(where, text);
  const f = new FieldReader(yaml);
  const top = f.mapping(yaml.data, []);
  f.onlyKeys(top, [], ["name", "command", "args", "restart"]);
  const name = f.string(top.name, ["name"], NAME, `lowercase letters, digits and '-', at most ${SERVICE_FORMAT.maxName}`);
  if (`${name}.yaml` !== fileName) throw yaml.error(["name"], `the service is named '${name}' but its file is ${fileName}; name the file ${name}.yaml`);
  const command = f.string(top.command, ["command"]);
  if (!command.startsWith("/") || command.includes("\n") || posix.normalize(command) !== command) {
    throw yaml.error(["command"], `command '${command}' must be an absolute, normalized path of a program in the image`);
  }
  if (Buffer.byteLength(command) > SERVICE_FORMAT.maxCommand) throw yaml.error(["command"], `the command's path is longer than init reads (${SERVICE_FORMAT.maxCommand} bytes)`);
  const args = top.args === undefined ? [] : f.list(top.args, ["args"]).map((a, i) => {
    const arg = typeof a === "number" ? String(a) : f.string(a, ["args", i]);
    if (arg.includes("\n") || arg.includes("\0")) throw yaml.error(["args", i], "an argument is one line");
    return arg;
  });
  if (args.length > SERVICE_FORMAT.maxArgs) throw yaml.error(["args"], `at most ${SERVICE_FORMAT.maxArgs} arguments`);
  const argsBytes = args.reduce((sum, a) => sum + Buffer.byteLength(a) + 1, 0);
  if (argsBytes > SERVICE_FORMAT.maxArgsBytes) throw yaml.error(["args"], `the arguments take ${argsBytes} bytes; init reads at most ${SERVICE_FORMAT.maxArgsBytes} (each with a NUL)`);
  const restart = top.restart === undefined ? "always" : f.string(top.restart, ["restart"]);
  if (!(RESTART as readonly string[]).includes(restart)) throw yaml.error(["restart"], `restart '${restart}' is not known; use ${RESTART.join(", ")}`);
  return { name, command, args, restart: restart as ServiceDefinition["restart"] };
}

/** The definition as init reads it (usr/lib/bronze/services/NAME.service): one key=value a line, `arg` repeated in order. */
export function renderServiceFile(service: ServiceDefinition): Buffer {
  const lines = [`name=${service.name}`, `command=${service.command}`, ...service.args.map((a) => `arg=${a}`), `restart=${service.restart}`];
  return Buffer.from(`${lines.join("\n")}\n`);
}
