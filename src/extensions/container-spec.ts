// The OCI runtime config (config.json) of a container made from an image: the image's process (entrypoint,
// command, environment, directory), run as the user bronze resolved, confined as a service is (namespaces,
// read-only root, only the capabilities kept, no_new_privs, init's deny-list or an allow-list, cgroup
// limits). Pure: the image's config and the settings in, the runtime config out.
import type { Arch } from "../core/arch.ts";
import { DENIED_SYSCALLS, type Confinement } from "./services.ts";

/** What of an image's config (its `config` object) makes the container's process. */
export interface ImageProcess {
  /** User as the image says it ("uid", "uid:gid", "name", "name:group"); empty: root */
  user: string;
  env: string[];
  entrypoint: string[];
  cmd: string[];
  workingDir: string;
  /** Volumes: each gets a tmpfs of its own, as a container runtime gives each an empty volume */
  volumes: string[];
}

/** How the extension's build.yaml runs an image's container (the service keys that apply to a container). */
export interface ContainerSettings extends Pick<Confinement, "capabilities" | "syscalls" | "network" | "limits"> {
  /** replaces the image's Cmd */
  args?: string[];
  /** private tmpfs mounts, owned by the container's user (mode 0700) */
  tmpfs: string[];
}

interface SeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo: number; op: string }[];
}

/** The parts of the OCI runtime spec's config.json that bronze writes. */
export interface RuntimeSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<"bounding" | "effective" | "inheritable" | "permitted" | "ambient", string[]>;
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: { destination: string; type: string; source: string; options: string[] }[];
  linux: {
    resources: { memory?: { limit: number }; cpu?: { quota: number; period: number }; pids?: { limit: number } };
    namespaces: { type: string }[];
    seccomp: { defaultAction: string; defaultErrnoRet?: number; architectures: string[]; syscalls: SeccompRule[] };
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}

const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const ERRNO = { EPERM: 1, ENOSYS: 38 } as const;
/** clone(2) flags that make namespaces: a confined process makes none */
const CLONE_NEW = { NEWTIME: 0x80, NEWNS: 0x20000, NEWCGROUP: 0x2000000, NEWUTS: 0x4000000, NEWIPC: 0x8000000, NEWUSER: 0x10000000, NEWPID: 0x20000000, NEWNET: 0x40000000 };

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : []);

/** The process parts of an image config; what is missing is empty. */
export function imageProcess(config: Record<string, unknown>): ImageProcess {
  const c = (typeof config.config === "object" && config.config !== null ? config.config : {}) as Record<string, unknown>;
  const volumes = typeof c.Volumes === "object" && c.Volumes !== null ? Object.keys(c.Volumes) : [];
  return {
    user: typeof c.User === "string" ? c.User : "",
    env: strings(c.Env),
    entrypoint: strings(c.Entrypoint),
    cmd: strings(c.Cmd),
    workingDir: typeof c.WorkingDir === "string" && c.WorkingDir ? c.WorkingDir : "/",
    volumes: volumes.sort(),
  };
}

/** The process's environment: the image's, with a PATH when it has none. */
export function processEnv(image: ImageProcess): string[] {
  return image.env.some((e) => e.startsWith("PATH=")) ? image.env : [DEFAULT_PATH, ...image.env];
}

/** The seccomp rules: init's deny-list and clone into namespaces refused, or only the allow-list (with execve). */
function seccompOf(syscalls: readonly string[], arch: Arch): RuntimeSpec["linux"]["seccomp"] {
  const refuse = { action: "SCMP_ACT_ERRNO", errnoRet: ERRNO.EPERM };
  // clone3's flags are behind a pointer the filter cannot read: callers fall back to clone
  const clone3 = { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ERRNO.ENOSYS };
  const cloneNew = Object.values(CLONE_NEW).map((flag): SeccompRule => ({ names: ["clone"], ...refuse, args: [{ index: 0, value: flag, valueTwo: flag, op: "SCMP_CMP_MASKED_EQ" }] }));
  if (syscalls.length) {
    return { defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: ERRNO.EPERM, architectures: [arch.seccomp], syscalls: [{ names: ["execve", ...syscalls], action: "SCMP_ACT_ALLOW" }] };
  }
  return { defaultAction: "SCMP_ACT_ALLOW", architectures: [arch.seccomp], syscalls: [{ names: [...DENIED_SYSCALLS, ...arch.deniedSyscalls], ...refuse }, clone3, ...cloneNew] };
}

const tmpfs = (destination: string, options: string[]) => ({ destination, type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", ...options] });

/** Where the runtime mounts something in the container: each must be a directory of its root (the root is read-only). */
export function mountPoints(image: ImageProcess, settings: ContainerSettings): string[] {
  return [...new Set(["/proc", "/dev", "/sys", "/tmp", ...settings.tmpfs, ...image.volumes])];
}

/** The runtime config of container `name`: `args` is the process (entrypoint and command, resolved), `env` its environment, uid and gid its user. */
export function containerSpec(name: string, image: ImageProcess, process: { args: string[]; env: string[]; uid: number; gid: number }, settings: ContainerSettings, arch: Arch): RuntimeSpec {
  const caps = settings.capabilities.map((c) => `CAP_${c.toUpperCase()}`);
  const { memory, cpu, pids } = settings.limits;
  const resources = {
    ...(memory !== undefined ? { memory: { limit: memory } } : {}),
    ...(cpu ? { cpu: { quota: cpu.quotaUs, period: cpu.periodUs } } : {}),
    ...(pids !== undefined ? { pids: { limit: pids } } : {}),
  };
  const owned = [`uid=${process.uid}`, `gid=${process.gid}`];
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: process.uid, gid: process.gid },
      args: process.args,
      env: process.env,
      cwd: image.workingDir,
      capabilities: { bounding: caps, effective: caps, inheritable: caps, permitted: caps, ambient: caps },
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: true },
    hostname: name,
    mounts: [
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=64k"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "ro"] },
      tmpfs("/tmp", ["mode=1777"]),
      ...[...settings.tmpfs, ...image.volumes.filter((v) => !settings.tmpfs.includes(v))].map((path) => tmpfs(path, ["mode=0700", ...owned])),
    ],
    linux: {
      resources,
      namespaces: ["pid", ...(settings.network === "private" ? ["network"] : []), "ipc", "uts", "mount", "cgroup"].map((type) => ({ type })),
      seccomp: seccompOf(settings.syscalls, arch),
      maskedPaths: ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
      readonlyPaths: ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}
