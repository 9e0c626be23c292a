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
  maxSyscalls: 512,
  maxWritable: 8,
  maxAfter: 8,
  /** the descriptor a service with `ready: notify` writes a line on when it is ready */
  notifyFd: 3,
} as const;

/** The capabilities a service may keep, by number (capabilities(7)), as pkgs/init/src/capabilities.h names them. */
export const CAPABILITIES = [
  "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
  "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
  "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
  "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
  "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
  "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
] as const;
export const SERVICES_DIR = SERVICE_FORMAT.dir;

/** A service definition an extension declares (a NAME.yaml file in the services directory). */
export const isServiceDefinition = (entry: { type: string; path: string }): boolean =>
  entry.type === "file" && entry.path.startsWith(SERVICES_DIR) && entry.path.endsWith(".yaml");
const RESTART = ["always", "on-failure", "never"] as const;
const NAME = new RegExp(`^[a-z0-9][a-z0-9-]{0,${SERVICE_FORMAT.maxName - 1}}$`);

export interface ServiceLimits {
  /** memory.max in bytes */
  memory?: number;
  /** cpu.max: the quota in microseconds of each period */
  cpu?: { quotaUs: number; periodUs: number };
  /** pids.max */
  pids?: number;
}

/** How init confines a service; every service is confined, these say how far. */
export interface Confinement {
  uid: number;
  gid: number;
  /** the capabilities kept (every other is dropped), in capability order */
  capabilities: string[];
  /** a seccomp allow-list (with execve); empty: init's deny-list of dangerous syscalls */
  syscalls: string[];
  network: "host" | "private";
  limits: ServiceLimits;
  /** paths under /var/ it may write (made its own, mode 0700); all else is read-only */
  writable: string[];
  /** services it starts after, once each is ready */
  after: string[];
  /** notify: ready when it writes a line on descriptor 3; running: once it has run 2 s */
  ready: "notify" | "running";
}

/**
 * The syscalls a confined process is denied on every architecture (each arch adds its own, Arch.deniedSyscalls),
 * as init's DENIED[] in pkgs/init/src/confine.c lists them (test/pkgs/init.test.ts holds the two to the same
 * names): bronze writes them into the seccomp rules of the containers it makes from images.
 */
export const DENIED_SYSCALLS = [
  "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff",
  "mount", "umount2", "pivot_root", "chroot", "bpf", "perf_event_open", "ptrace", "process_vm_readv",
  "process_vm_writev", "kcmp", "keyctl", "add_key", "request_key", "acct", "settimeofday", "clock_settime",
  "clock_adjtime", "adjtimex", "syslog", "setns", "unshare", "open_by_handle_at", "name_to_handle_at",
  "userfaultfd", "quotactl", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
  "mount_setattr", "io_uring_setup", "io_uring_enter", "io_uring_register", "sethostname", "setdomainname",
  "personality",
] as const;

/** The OCI runtime that runs container services (the crun package of the base image), and where it keeps state. */
export const CONTAINER_RUNTIME = { command: "/usr/bin/crun", state: "/run/crun" } as const;

export interface ServiceDefinition extends Partial<Confinement> {
  name: string;
  /** an OCI runtime bundle in the image (config.json and its rootfs/): the service is that container, run by crun */
  container?: string;
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
  f.onlyKeys(top, [], ["name", "command", "args", "restart", "container", ...CONFINEMENT_KEYS]);
  const name = f.string(top.name, ["name"], NAME, `lowercase letters, digits and '-', at most ${SERVICE_FORMAT.maxName}`);
  if (`${name}.yaml` !== fileName) throw yaml.error(["name"], `the service is named '${name}' but its file is ${fileName}; name the file ${name}.yaml`);
  if (top.container !== undefined) return containerService(yaml, f, top, name);
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
  return { name, command, args, restart: restartOf(yaml, f, top), ...confinementOf(yaml, f, top, name) };
}

function restartOf(yaml: YamlFile, f: FieldReader, top: Record<string, unknown>): ServiceDefinition["restart"] {
  const restart = top.restart === undefined ? "always" : f.string(top.restart, ["restart"]);
  if (!(RESTART as readonly string[]).includes(restart)) throw yaml.error(["restart"], `restart '${restart}' is not known; use ${RESTART.join(", ")}`);
  return restart as ServiceDefinition["restart"];
}

/** A container service: crun runs the bundle, whose config.json confines it; of init's keys only restart, after and ready apply. */
function containerService(yaml: YamlFile, f: FieldReader, top: Record<string, unknown>, name: string): ServiceDefinition {
  const bundle = f.string(top.container, ["container"]);
  if (!bundle.startsWith("/") || bundle.includes("\n") || posix.normalize(bundle) !== bundle || bundle.endsWith("/") || Buffer.byteLength(bundle) > SERVICE_FORMAT.maxCommand) {
    throw yaml.error(["container"], `container '${bundle}' must be the absolute, normalized path of an OCI runtime bundle (config.json, rootfs/) in the image`);
  }
  for (const key of ["command", "args", ...CONFINEMENT_KEYS.filter((k) => k !== "after" && k !== "ready")]) {
    if (top[key] !== undefined) throw yaml.error([key], `a container service has no '${key}': crun runs ${bundle}, and its config.json says what runs and how it is confined`);
  }
  const { after, ready } = confinementOf(yaml, f, top, name);
  if (ready === "notify") throw yaml.error(["ready"], "a container service is ready once it has run 2 s (ready: running): crun keeps init's notification descriptor from it");
  return {
    name,
    container: bundle,
    command: CONTAINER_RUNTIME.command,
    // no pivot_root: the root of every mount namespace here is the initramfs, which cannot be pivoted away
    args: ["--root", CONTAINER_RUNTIME.state, "run", "--no-pivot", "--bundle", bundle, name],
    restart: restartOf(yaml, f, top),
    after,
    ready,
  };
}

const CONFINEMENT_KEYS = ["user", "group", "capabilities", "seccomp", "network", "limits", "writable", "after", "ready"];
const SYSCALL = /^[a-z0-9_]{1,63}$/;
const SIZE = /^(\d+)([KMG]?)$/;
const CPU = /^(\d+)%$/;
const MAX_ID = 0xfffffffe;

/** The confinement fields of a definition: what it names, with init's defaults for the rest. */
export function confinementOf(yaml: YamlFile, f: FieldReader, top: Record<string, unknown>, name: string, base: readonly (string | number)[] = []): Confinement {
  const at = (...path: (string | number)[]) => [...base, ...path];
  const id = (key: string): number | undefined => {
    if (top[key] === undefined) return undefined;
    const value = f.integer(top[key], at(key));
    if (value > MAX_ID) throw yaml.error(at(key), `${key} ${value} is above ${MAX_ID}`);
    return value;
  };
  const uid = id("user") ?? 0;
  const names = (key: string, pattern: RegExp, hint: string, max: number, where: (string | number)[] = at(key), value: unknown = top[key]): string[] => {
    const list = f.list(value, where).map((v, i) => f.string(v, [...where, i], pattern, hint));
    if (list.length > max) throw yaml.error(where, `at most ${max} entries`);
    const twice = list.find((v, i) => list.indexOf(v) !== i);
    if (twice) throw yaml.error(where, `'${twice}' is named twice`);
    return list;
  };
  const known = CAPABILITIES as readonly string[];
  const capabilities = names("capabilities", /^[a-z_]+$/, "a capability as capabilities(7) names it, lowercase, without CAP_", known.length);
  capabilities.forEach((c, i) => {
    if (!known.includes(c)) throw yaml.error(at("capabilities", i), `capability '${c}' is not known; use one of: ${known.join(", ")}`);
  });
  let syscalls: string[] = [];
  if (top.seccomp !== undefined) {
    const seccomp = f.mapping(top.seccomp, at("seccomp"));
    f.onlyKeys(seccomp, at("seccomp"), ["allow"]);
    syscalls = names("seccomp.allow", SYSCALL, "a syscall name (a-z 0-9 _)", SERVICE_FORMAT.maxSyscalls, at("seccomp", "allow"), seccomp.allow);
    if (syscalls.length === 0) throw yaml.error(at("seccomp", "allow"), "an allow-list names at least one syscall; leave seccomp out for init's deny-list");
  }
  const network = top.network === undefined ? "host" : f.string(top.network, at("network"));
  if (network !== "host" && network !== "private") throw yaml.error(at("network"), `network '${network}' is not known; use host or private (a namespace with loopback only)`);
  const writable = names("writable", /^\/var\/[^\n]+$/, "an absolute path under /var/", SERVICE_FORMAT.maxWritable);
  writable.forEach((path, i) => {
    if (posix.normalize(path) !== path || path.endsWith("/") || Buffer.byteLength(path) > SERVICE_FORMAT.maxCommand) {
      throw yaml.error(at("writable", i), `writable '${path}' must be a normalized path under /var/ of at most ${SERVICE_FORMAT.maxCommand} bytes`);
    }
  });
  const after = names("after", NAME, "a service name", SERVICE_FORMAT.maxAfter);
  if (after.includes(name)) throw yaml.error(at("after"), `service '${name}' cannot come after itself`);
  const ready = top.ready === undefined ? "running" : f.string(top.ready, at("ready"));
  if (ready !== "notify" && ready !== "running") throw yaml.error(at("ready"), `ready '${ready}' is not known; use notify (a line on descriptor ${SERVICE_FORMAT.notifyFd}) or running (2 s after its start)`);
  return {
    uid,
    gid: id("group") ?? uid,
    capabilities: known.filter((c) => capabilities.includes(c)),
    syscalls,
    network,
    limits: limitsOf(yaml, f, top.limits, at("limits")),
    writable,
    after,
    ready,
  };
}

function limitsOf(yaml: YamlFile, f: FieldReader, value: unknown, where: readonly (string | number)[]): ServiceLimits {
  const at = (...path: string[]) => [...where, ...path];
  if (value === undefined) return {};
  const limits = f.mapping(value, at());
  f.onlyKeys(limits, at(), ["memory", "cpu", "pids"]);
  const out: ServiceLimits = {};
  if (limits.memory !== undefined) {
    const text = typeof limits.memory === "number" ? String(limits.memory) : f.string(limits.memory, at("memory"));
    const m = SIZE.exec(text);
    const bytes = m ? Number(m[1]) * 1024 ** " KMG".indexOf(m[2] || " ") : NaN;
    if (!(bytes > 0) || !Number.isSafeInteger(bytes)) throw yaml.error(at("memory"), `memory '${text}' is not a size: bytes, or a number with K, M or G (1024s)`);
    out.memory = bytes;
  }
  if (limits.cpu !== undefined) {
    const text = f.string(limits.cpu, at("cpu"));
    const m = CPU.exec(text);
    const percent = m ? Number(m[1]) : 0;
    if (percent < 1 || percent > 100_000) throw yaml.error(at("cpu"), `cpu '${text}' is not a share: a percentage of one CPU, 1% to 100000% (e.g. 50%, or 200% for two CPUs)`);
    out.cpu = { quotaUs: percent * 1000, periodUs: 100_000 };
  }
  if (limits.pids !== undefined) {
    const pids = f.integer(limits.pids, at("pids"));
    if (pids < 1) throw yaml.error(at("pids"), "pids must be at least 1");
    out.pids = pids;
  }
  return out;
}

/**
 * What is wrong with the services of one image taken together: a dependency (`after`) on a service the
 * image lacks, or a cycle of them (init would start none of its services). Each problem names the service.
 */
export function serviceGraphProblems(services: readonly Pick<ServiceDefinition, "name" | "after">[]): { service: string; problem: string }[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const problems: { service: string; problem: string }[] = [];
  for (const s of services) {
    for (const dep of s.after ?? []) if (!byName.has(dep)) problems.push({ service: s.name, problem: `comes after '${dep}', which is not a service of this image` });
  }
  const done = new Set<string>();
  const visit = (name: string, path: string[]): void => {
    if (done.has(name)) return;
    const at = path.indexOf(name);
    if (at >= 0) {
      const cycle = [...path.slice(at), name];
      problems.push({ service: name, problem: `its dependencies form a cycle (${cycle.join(" -> ")}): none of them would start` });
      return;
    }
    for (const dep of byName.get(name)?.after ?? []) if (byName.has(dep)) visit(dep, [...path, name]);
    done.add(name);
  };
  for (const s of services) visit(s.name, []);
  return problems;
}

/** The definition as init reads it (usr/lib/bronze/services/NAME.service): one key=value a line, `arg` repeated in order. */
export function renderServiceFile(service: ServiceDefinition): Buffer {
  const { limits = {} } = service;
  const lines = [
    `name=${service.name}`,
    `command=${service.command}`,
    ...service.args.map((a) => `arg=${a}`),
    `restart=${service.restart}`,
    ...(service.container ? [`container=${service.container}`] : []),
    ...(service.uid !== undefined ? [`user=${service.uid}`, `group=${service.gid ?? service.uid}`] : []),
    ...(service.capabilities ?? []).map((c) => `cap=${c}`),
    ...(service.syscalls ?? []).map((c) => `syscall=${c}`),
    ...(service.network === "private" ? ["network=private"] : []),
    ...(limits.memory ? [`memory_max=${limits.memory}`] : []),
    ...(limits.cpu ? [`cpu_max=${limits.cpu.quotaUs} ${limits.cpu.periodUs}`] : []),
    ...(limits.pids ? [`pids_max=${limits.pids}`] : []),
    ...(service.writable ?? []).map((p) => `writable=${p}`),
    ...(service.after ?? []).map((a) => `after=${a}`),
    ...(service.ready === "notify" ? ["ready=notify"] : []),
  ];
  return Buffer.from(`${lines.join("\n")}\n`);
}
