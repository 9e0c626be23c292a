import { posix } from "node:path";
import { FieldReader, YamlFile } from "../core/yamlfile.ts";

/** Where an extension declares services: one NAME.yaml each, which init starts and supervises. */
export const SERVICES_DIR = "usr/lib/bronze/services/";
const RESTART = ["always", "on-failure", "never"] as const;
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const MAX_ARGS = 32;

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
  const name = f.string(top.name, ["name"], NAME, "lowercase letters, digits and '-', at most 63");
  if (`${name}.yaml` !== fileName) throw yaml.error(["name"], `the service is named '${name}' but its file is ${fileName}; name the file ${name}.yaml`);
  const command = f.string(top.command, ["command"]);
  if (!command.startsWith("/") || command.includes("\n") || posix.normalize(command) !== command) {
    throw yaml.error(["command"], `command '${command}' must be an absolute, normalized path of a program in the image`);
  }
  const args = top.args === undefined ? [] : f.list(top.args, ["args"]).map((a, i) => {
    const arg = typeof a === "number" ? String(a) : f.string(a, ["args", i]);
    if (arg.includes("\n") || arg.includes("\0")) throw yaml.error(["args", i], "an argument is one line");
    return arg;
  });
  if (args.length > MAX_ARGS) throw yaml.error(["args"], `at most ${MAX_ARGS} arguments`);
  const restart = top.restart === undefined ? "always" : f.string(top.restart, ["restart"]);
  if (!(RESTART as readonly string[]).includes(restart)) throw yaml.error(["restart"], `restart '${restart}' is not known; use ${RESTART.join(", ")}`);
  return { name, command, args, restart: restart as ServiceDefinition["restart"] };
}

/** The definition as init reads it (usr/lib/bronze/services/NAME.service): one key=value a line, `arg` repeated in order. */
export function renderServiceFile(service: ServiceDefinition): Buffer {
  const lines = [`name=${service.name}`, `command=${service.command}`, ...service.args.map((a) => `arg=${a}`), `restart=${service.restart}`];
  return Buffer.from(`${lines.join("\n")}\n`);
}
