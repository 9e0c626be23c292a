import { HOST_ARCH } from "../../src/core/arch.ts";
import assert from "node:assert/strict";
import { chmod, cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS } from "../../src/boot/qemu.ts";
import { createContext } from "../../src/pipeline/context.ts";
import { buildPackageSet } from "../../src/pkgs/build-set.ts";
import { startBuild } from "../helpers/build.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// The services of extensions/confined on the minimal image, booted: what init's confinement lets each
// see and do, as the probe reports it from inside (pkgs/confine-probe) and init reports it on the console.
// A copy of the extension also makes a container from an OCI image (made here by umoci, with the probe).

const OUT = join(PROJECT_ROOT, "_out", "confined");
after(() => rm(OUT, { recursive: true, force: true }));

before(async () => {
  const base = await startBuild("minimal");
  assert.equal(base.exitCode, 0, base.all);
});

/**
 * A copy of extensions/confined in `dir` whose build.yaml also makes container `imaged` from an OCI image
 * that umoci makes of the probe (as /bin/image-probe, run as the image's user `probe`), and its service.
 */
async function withImagedContainer(dir: string): Promise<string> {
  const ext = join(dir, "confined");
  await cp(join(PROJECT_ROOT, "extensions", "confined"), ext, { recursive: true });
  const [probe] = await buildPackageSet(["confine-probe"], HOST_ARCH, createContext(PROJECT_ROOT, 0));
  const layout = join(ext, "images", "probe");
  const work = join(dir, "image-work");
  const umoci = (...args: string[]) => execa("umoci", args);
  await umoci("init", "--layout", layout);
  await umoci("new", "--image", `${layout}:probe`);
  await umoci("unpack", "--image", `${layout}:probe`, work);
  await mkdir(join(work, "rootfs", "bin"), { recursive: true });
  await mkdir(join(work, "rootfs", "etc"));
  await cp(join(probe!.dir, "usr", "local", "bin", "confine-probe"), join(work, "rootfs", "bin", "image-probe"));
  await chmod(join(work, "rootfs", "bin", "image-probe"), 0o755);
  await writeFile(join(work, "rootfs", "etc", "passwd"), "root:x:0:0::/:/bin/image-probe\nprobe:x:2100:2100::/:/bin/image-probe\n");
  await umoci("repack", "--image", `${layout}:probe`, work);
  await umoci("config", "--image", `${layout}:probe`, "--config.entrypoint", "image-probe", "--config.cmd", "report", "--config.cmd", "/var/lib/probe", "--config.user", "probe");
  await umoci("gc", "--layout", layout);
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] };
  const build = await readFile(join(ext, "build.yaml"), "utf8");
  await writeFile(
    join(ext, "build.yaml"),
    `${build}containers:\n  - name: imaged\n    image: images/probe\n    ref: probe\n    digest: ${index.manifests[0]!.digest}\n    capabilities: [chown]\n    network: private\n    limits: {memory: 32M, pids: 16}\n    tmpfs: [/var/lib/probe]\n`,
  );
  await writeFile(join(ext, "rootfs", "usr", "lib", "bronze", "services", "imaged.yaml"), "name: imaged\ncontainer: /usr/local/lib/containers/imaged\nrestart: never\nafter: [probe]\n");
  return ext;
}

/** The probe's observations: "confine-probe: WHAT VALUE" lines, the last of each. */
function observations(lines: readonly string[], prefix = "confine-probe: "): Map<string, string> {
  const seen = new Map<string, string>();
  const known = ["write writable", "write /var", "write /tmp", "write /", "chown /tmp to root", "ptrace traceme", "unshare uts"];
  for (const line of lines) {
    const at = line.indexOf(prefix);
    if (at < 0) continue;
    const text = line.slice(at + prefix.length).trim();
    const what = known.find((k) => text.startsWith(`${k} `)) ?? text.split(" ")[0] ?? "";
    seen.set(what, text.slice(what.length + 1));
  }
  return seen;
}

test("confined services: own PID, mount, UTS and network namespaces, a read-only root but for their writable paths, only the capabilities they keep, seccomp, cgroup limits (an OOM kill reported and restarted), a start after a dependency is ready, and containers run by crun (a bundle shipped as it is, and one bronze made from an OCI image)", { timeout: 15 * 60_000 }, async () => {
  const dir = await tempDir();
  const profile = join(dir, "confined.yaml");
  await writeFile(profile, `name: confined\nbase: minimal\nextensions:\n  - build: ${await withImagedContainer(dir)}\n`);
  const built = await startBuild(profile);
  assert.equal(built.exitCode, 0, built.all);

  const result = await boot(
    { kind: "uki", uki: join(OUT, "uki.efi") },
    { ...BOOT_DEFAULTS, timeoutMs: 300_000, until: [/confine-probe: done report/, /confine-probe: getuid /, /container-probe: done report/, /image-probe: done report/, /bronze: service hog restarting in 2 s/] },
  );
  const lines = result.console;
  const text = lines.join("\n");
  assert.equal(result.ready.root, "ro");
  assert.equal(result.ready.services, "5", "probe and hog started; late, boxed and imaged waiting for the probe");

  // init says how each is confined when it starts it
  assert.match(text, /bronze: service probe started pid=\d+ uid=1000 gid=1000 caps=0x1 seccomp=deny-list network=private memory\.max=33554432 cpu\.max=50000\/100000 pids\.max=16/);
  assert.match(text, /bronze: service late started pid=\d+ uid=1002 gid=1002 caps=0x0 seccomp=allow-list network=host/);

  // the probe reports before late starts (it comes after the probe's readiness), each in its own lines
  const readyAt = lines.findIndex((l) => /bronze: service probe ready \(notified\)/.test(l));
  const lateAt = lines.findIndex((l) => /bronze: service late started/.test(l));
  assert.ok(readyAt >= 0 && lateAt > readyAt, `late (line ${lateAt}) after the probe's readiness (line ${readyAt})`);
  const probe = observations(lines.slice(0, readyAt));
  // PID namespace: it is process 1 and sees no other; UTS: its own host name
  assert.equal(probe.get("pid"), "1");
  assert.equal(probe.get("processes"), "1");
  assert.equal(probe.get("hostname"), "probe");
  // its user and group, only chown kept (bit 0) in every set, no new privileges, a seccomp filter
  assert.equal(probe.get("Uid"), "1000 1000 1000 1000");
  assert.equal(probe.get("Gid"), "1000 1000 1000 1000");
  assert.equal(probe.get("Groups"), "1000");
  for (const set of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) assert.equal(probe.get(set), "0000000000000001", set);
  assert.equal(probe.get("NoNewPrivs"), "1");
  assert.equal(probe.get("Seccomp"), "2");
  // the root and /var read-only; its writable directory and private /tmp not
  assert.equal(probe.get("write /"), "EROFS");
  assert.equal(probe.get("write /var"), "EROFS");
  assert.equal(probe.get("write writable"), "ok");
  assert.equal(probe.get("write /tmp"), "ok");
  // the kept capability works (uid 1000 gives a file to root); a dropped one does not
  assert.equal(probe.get("chown /tmp to root"), "ok");
  assert.equal(probe.get("mknod"), "EPERM");
  assert.equal(probe.get("sethostname"), "EPERM");
  // the deny-list: tracing itself (which any process may do) and new namespaces are refused
  assert.equal(probe.get("ptrace traceme"), "EPERM");
  assert.equal(probe.get("unshare uts"), "EPERM");
  assert.deepEqual(probe.get("dev")?.split(",").sort(), ["fd", "full", "null", "random", "stderr", "stdin", "stdout", "tty", "urandom", "zero"]);
  assert.equal(probe.get("interfaces"), "lo");
  // its own cgroup, with the limits of its definition; pids.max holds (16 with itself)
  assert.equal(probe.get("cgroup"), "/services/probe");
  assert.equal(probe.get("memory.max"), "33554432");
  assert.equal(probe.get("cpu.max"), "50000 100000");
  assert.equal(probe.get("pids.max"), "16");
  assert.equal(probe.get("forks"), "15 then EAGAIN");

  // late, in namespaces of its own (the host's network)
  const lateNs = observations(lines.slice(lateAt)).get("namespaces") ?? "";
  const probeNs = probe.get("namespaces") ?? "";
  const ns = (all: string, kind: string) => new RegExp(`${kind}:\\[(\\d+)\\]`).exec(all)?.[1];
  for (const kind of ["mnt", "pid", "ipc", "uts", "net"]) {
    assert.ok(ns(probeNs, kind) && ns(lateNs, kind), `${kind} in '${probeNs}' and '${lateNs}'`);
    assert.notEqual(ns(probeNs, kind), ns(lateNs, kind), `each service has its own ${kind} namespace (net: the probe's is private)`);
  }
  // its allow-list leaves getuid out: refused, while what it lists ran (it printed)
  assert.match(text, /confine-probe: late started pid=1/);
  assert.match(text, /confine-probe: getuid EPERM/);

  // the hog reaches its memory.max: killed by the OOM killer, reported as such, restarted by its policy
  assert.match(text, /bronze: service hog started pid=\d+ uid=1001 gid=1001 caps=0x0 seccomp=deny-list network=host memory\.max=16777216(?! cpu\.max| pids\.max)/);
  // (the kernel's OOM report and other services' lines may come between init's lines)
  assert.match(text, /bronze: service hog killed by the OOM killer: memory\.max=16777216 reached\n[\s\S]*bronze: service hog restarting in 1 s\n[\s\S]*bronze: service hog started[\s\S]*bronze: service hog killed by the OOM killer/);

  // the container: crun (of the base image) runs the bundle the extension ships, confined as its config.json says
  assert.match(text, /bronze: service boxed started pid=\d+ container=\/usr\/local\/lib\/containers\/boxed/);
  const boxAt = lines.findIndex((l) => /bronze: service boxed started/.test(l));
  assert.ok(boxAt > readyAt, "boxed comes after the probe too");
  const box = observations(lines, "container-probe: ");
  assert.equal(box.get("pid"), "1");
  assert.equal(box.get("processes"), "1");
  assert.equal(box.get("hostname"), "boxed");
  assert.equal(box.get("Uid"), "2000 2000 2000 2000");
  for (const set of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) assert.equal(box.get(set), "0000000000000001", set);
  assert.equal(box.get("chown /tmp to root"), "ok", "the capability it keeps works");
  assert.equal(box.get("NoNewPrivs"), "1");
  assert.equal(box.get("Seccomp"), "2");
  assert.equal(box.get("write /"), "EROFS");
  assert.equal(box.get("write writable"), "ok");
  assert.equal(box.get("ptrace traceme"), "EPERM", "its config.json's seccomp rules");
  assert.equal(box.get("mknod"), "EPERM");
  assert.equal(box.get("interfaces"), "lo");
  assert.equal(box.get("cgroup"), "/", "a cgroup namespace of its own");
  assert.equal(box.get("memory.max"), "33554432");
  assert.equal(box.get("pids.max"), "16");
  assert.equal(box.get("forks"), "15 then EAGAIN");

  // the container bronze made from an OCI image: the image's program and user, build.yaml's confinement
  assert.match(text, /bronze: service imaged started pid=\d+ container=\/usr\/local\/lib\/containers\/imaged/);
  const imaged = observations(lines, "image-probe: ");
  assert.equal(imaged.get("pid"), "1");
  assert.equal(imaged.get("processes"), "1");
  assert.equal(imaged.get("hostname"), "imaged");
  assert.equal(imaged.get("Uid"), "2100 2100 2100 2100", "the image's User (probe, from its /etc/passwd)");
  for (const set of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) assert.equal(imaged.get(set), "0000000000000001", set);
  assert.equal(imaged.get("chown /tmp to root"), "ok");
  assert.equal(imaged.get("NoNewPrivs"), "1");
  assert.equal(imaged.get("Seccomp"), "2");
  assert.equal(imaged.get("write /"), "EROFS");
  assert.equal(imaged.get("write writable"), "ok", "its tmpfs, owned by its user");
  assert.equal(imaged.get("ptrace traceme"), "EPERM", "init's deny-list, in its seccomp rules");
  assert.equal(imaged.get("unshare uts"), "EPERM");
  assert.equal(imaged.get("mknod"), "EPERM");
  assert.equal(imaged.get("interfaces"), "lo");
  assert.equal(imaged.get("cgroup"), "/");
  assert.equal(imaged.get("memory.max"), "33554432");
  assert.equal(imaged.get("pids.max"), "16");
  assert.equal(imaged.get("forks"), "15 then EAGAIN");
});
