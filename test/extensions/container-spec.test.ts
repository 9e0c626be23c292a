import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_ARCH } from "../../src/core/arch.ts";
import { containerSpec, imageProcess, mountPoints, processEnv, type ContainerSettings } from "../../src/extensions/container-spec.ts";
import { DENIED_SYSCALLS } from "../../src/extensions/services.ts";

const settings: ContainerSettings = { capabilities: [], syscalls: [], network: "host", limits: {}, tmpfs: [] };
const image = imageProcess({ architecture: "amd64", config: { User: "app:app", Env: ["A=1"], Entrypoint: ["/bin/run"], Cmd: ["x"], WorkingDir: "/srv", Volumes: { "/data": {}, "/cache": {} } } });
const spec = (s: Partial<ContainerSettings> = {}) => containerSpec("web", image, { args: ["/bin/run", "x"], env: processEnv(image), uid: 7, gid: 8 }, { ...settings, ...s }, DEFAULT_ARCH);

test("an image config's process parts are read, what it lacks is empty; a PATH is added when it has none", () => {
  assert.deepEqual(image, { user: "app:app", env: ["A=1"], entrypoint: ["/bin/run"], cmd: ["x"], workingDir: "/srv", volumes: ["/cache", "/data"] });
  assert.deepEqual(imageProcess({}), { user: "", env: [], entrypoint: [], cmd: [], workingDir: "/", volumes: [] });
  assert.deepEqual(processEnv(image), ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1"]);
  assert.deepEqual(processEnv({ ...image, env: ["PATH=/x"] }), ["PATH=/x"]);
  assert.deepEqual(mountPoints(image, { ...settings, tmpfs: ["/run", "/data"] }), ["/proc", "/dev", "/sys", "/tmp", "/run", "/data", "/cache"]);
});

test("the container is confined as a service: no capabilities unless kept, no new privileges, read-only root, its own namespaces (network on request)", () => {
  const plain = spec();
  assert.deepEqual(plain.process.user, { uid: 7, gid: 8 });
  assert.equal(plain.process.cwd, "/srv");
  assert.equal(plain.process.noNewPrivileges, true);
  assert.deepEqual(plain.process.capabilities.ambient, []);
  assert.deepEqual(plain.linux.namespaces.map((n) => n.type), ["pid", "ipc", "uts", "mount", "cgroup"]);
  assert.deepEqual(plain.linux.resources, {});
  const kept = spec({ capabilities: ["chown", "net_bind_service"], network: "private", limits: { memory: 1024, cpu: { quotaUs: 50_000, periodUs: 100_000 }, pids: 9 } });
  for (const set of Object.values(kept.process.capabilities)) assert.deepEqual(set, ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]);
  assert.equal(Object.keys(kept.process.capabilities).length, 5);
  assert.ok(kept.linux.namespaces.some((n) => n.type === "network"));
  assert.deepEqual(kept.linux.resources, { memory: { limit: 1024 }, cpu: { quota: 50_000, period: 100_000 }, pids: { limit: 9 } });
  // each volume and tmpfs its own, owned by the container's user
  const data = plain.mounts.find((m) => m.destination === "/data");
  assert.deepEqual(data?.options, ["nosuid", "nodev", "mode=0700", "uid=7", "gid=8"]);
});

test("seccomp: init's deny-list with this arch's own, clone3 falling back, clone into any namespace refused; or only the allow-list with execve", () => {
  const deny = spec().linux.seccomp;
  assert.equal(deny.defaultAction, "SCMP_ACT_ALLOW");
  assert.deepEqual(deny.architectures, [DEFAULT_ARCH.seccomp]);
  assert.deepEqual(deny.syscalls[0], { names: [...DENIED_SYSCALLS, ...DEFAULT_ARCH.deniedSyscalls], action: "SCMP_ACT_ERRNO", errnoRet: 1 });
  assert.deepEqual(deny.syscalls[1], { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 });
  const cloneFlags = deny.syscalls.slice(2).map((r) => r.args?.[0] ?? { value: 0, valueTwo: -1, op: "" });
  assert.ok(deny.syscalls.slice(2).every((r) => r.names.join() === "clone" && r.errnoRet === 1));
  assert.equal(cloneFlags.reduce((all, a) => all | a.value, 0), 0x7e020080, "every CLONE_NEW* flag");
  assert.ok(cloneFlags.every((a) => a.value === a.valueTwo && a.op === "SCMP_CMP_MASKED_EQ"));
  const allow = spec({ syscalls: ["read", "write"] }).linux.seccomp;
  assert.deepEqual(allow, { defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 1, architectures: [DEFAULT_ARCH.seccomp], syscalls: [{ names: ["execve", "read", "write"], action: "SCMP_ACT_ALLOW" }] });
});
