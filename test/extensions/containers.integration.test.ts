import assert from "node:assert/strict";
import { chmod, chown, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { DEFAULT_ARCH } from "../../src/core/arch.ts";
import type { RuntimeSpec } from "../../src/extensions/container-spec.ts";
import { containerBundle, type ContainerImage } from "../../src/extensions/containers.ts";
import { readTree } from "../../src/oci/dir-read.ts";
import { resolveInRoot, treeLookup } from "../../src/oci/resolve.ts";
import type { ReadEntry } from "../../src/oci/tar-read.ts";
import { tempDir } from "../helpers/tmp.ts";

// An image made by umoci (two layers: the second deletes a file, empties a directory and replaces a
// link), converted by bronze into a runtime bundle, and compared with umoci's own unpacking of it.

const umoci = (...args: string[]) => execa("umoci", args);

/** An OCI layout at `dir`/layout with image tag `t`, made by umoci; its digest as index.json names it. */
async function makeImage(dir: string): Promise<string> {
  const layout = join(dir, "layout");
  const bundle = join(dir, "work");
  await umoci("init", "--layout", layout);
  await umoci("new", "--image", `${layout}:t`);
  await umoci("unpack", "--image", `${layout}:t`, bundle);
  const root = join(bundle, "rootfs");
  for (const d of ["usr/bin", "etc", "var/cache/app", "tmp", "opt/old"]) await mkdir(join(root, d), { recursive: true });
  await writeFile(join(root, "usr/bin/app"), "#!/bin/app\n");
  await chmod(join(root, "usr/bin/app"), 0o4755);
  await symlink("usr/bin", join(root, "bin"));
  await symlink("/usr/bin/app", join(root, "usr/bin/app-link"));
  await writeFile(join(root, "etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1500:1600::/home/app:/bin/sh\n");
  await writeFile(join(root, "etc/group"), "root:x:0:\napp:x:1600:\n");
  await writeFile(join(root, "var/cache/app/state"), "private\n");
  await chmod(join(root, "var/cache/app/state"), 0o600);
  await chown(join(root, "var/cache/app/state"), 1500, 1600);
  await writeFile(join(root, "opt/old/a"), "a\n");
  await writeFile(join(root, "removed"), "gone in layer 2\n");
  await chmod(join(root, "tmp"), 0o1777);
  await umoci("repack", "--image", `${layout}:t`, bundle);
  // layer 2: a whiteout, an opaque directory (emptied, one new file), a link replaced by a file
  await rm(join(root, "removed"));
  await rm(join(root, "opt/old"), { recursive: true });
  await mkdir(join(root, "opt/old"));
  await writeFile(join(root, "opt/old/b"), "b\n");
  await rm(join(root, "usr/bin/app-link"));
  await writeFile(join(root, "usr/bin/app-link"), "now a file\n");
  await umoci("repack", "--image", `${layout}:t`, bundle);
  await umoci("config", "--image", `${layout}:t`, "--config.entrypoint", "app", "--config.cmd", "serve", "--config.cmd", "--port=80", "--config.user", "app", "--config.env", "MODE=test", "--config.workingdir", "/var/cache/app", "--config.volume", "/data");
  await umoci("gc", "--layout", layout);
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] };
  return index.manifests[0]!.digest;
}

const container = (digest: string, extra: Partial<ContainerImage> = {}): ContainerImage => ({
  name: "app",
  image: "layout",
  ref: "t",
  digest,
  settings: { capabilities: ["net_bind_service"], syscalls: [], network: "private", limits: { memory: 64 * 1024 * 1024, pids: 32 }, tmpfs: ["/run/app"] },
  ...extra,
});

test("an image's layers become a runtime bundle as umoci unpacks them, links kept inside the root, privileges bits cleared, the process and user from its config", { timeout: 120_000 }, async () => {
  const dir = await tempDir();
  const digest = await makeImage(dir);
  const bundle = await containerBundle(container(digest), dir, DEFAULT_ARCH);
  const prefix = "usr/local/lib/containers/app/rootfs/";
  const ours = new Map(bundle.entries.filter((e) => e.path.startsWith(prefix)).map((e) => [e.path.slice(prefix.length), e]));

  // umoci's unpacking of the same image, compared entry by entry
  const reference = join(dir, "reference");
  await umoci("unpack", "--image", `${join(dir, "layout")}:t`, reference);
  const theirs = (await readTree(join(reference, "rootfs"))).filter((e) => !["proc", "dev", "sys", "data", "run", "run/app"].includes(e.path));
  const lookup = treeLookup(ours);
  for (const entry of theirs) {
    const mine = ours.get(entry.path);
    assert.ok(mine, `${entry.path} is missing`);
    assert.equal(mine.type, entry.type, entry.path);
    if (entry.type === "file") assert.deepEqual(mine.data, entry.data, entry.path);
    if (entry.type === "symlink") {
      // the same place inside the container, whether the link is written absolute or relative
      assert.equal(resolveInRoot(entry.path, lookup), resolveInRoot(entry.path, treeLookup(theirs.map((e) => [e.path, e] as const))), entry.path);
      assert.ok(!mine.target?.startsWith("/"), `${entry.path} -> ${mine.target}`);
    }
    if (entry.type !== "symlink") assert.equal(mine.mode, entry.mode & ~0o6002, entry.path);
  }
  assert.deepEqual([...ours.keys()].filter((p) => !theirs.some((e) => e.path === p)).sort(), ["data", "dev", "proc", "run", "run/app", "sys"], "only the mount points are added");
  assert.equal(ours.get("removed"), undefined, "the whiteout deleted it");
  assert.deepEqual([...ours.keys()].filter((p) => p.startsWith("opt/old/")), ["opt/old/b"], "the opaque directory has layer 2's entry alone");
  assert.equal(ours.get("usr/bin/app")?.mode, 0o755, "setuid cleared");
  assert.equal(ours.get("tmp")?.mode, 0o1775, "world-write cleared");
  const state = ours.get("var/cache/app/state") as ReadEntry;
  assert.deepEqual([state.uid, state.gid, state.mode], [1500, 1600, 0o600]);

  // the config: the image's process and user, bronze's confinement
  const config = JSON.parse(bundle.entries.find((e) => e.path === "usr/local/lib/containers/app/config.json")!.data!.toString()) as RuntimeSpec;
  const umociConfig = JSON.parse(await readFile(join(reference, "config.json"), "utf8")) as RuntimeSpec;
  assert.deepEqual(config.process.args, ["/usr/bin/app", "serve", "--port=80"], "the entrypoint found in its PATH, then its command");
  assert.deepEqual(umociConfig.process.args.slice(1), config.process.args.slice(1));
  assert.deepEqual(config.process.user, { uid: 1500, gid: 1600 });
  assert.deepEqual([umociConfig.process.user.uid, umociConfig.process.user.gid], [1500, 1600], "umoci resolves the same user");
  assert.equal(config.process.cwd, umociConfig.process.cwd);
  assert.ok(umociConfig.process.env.every((e) => e.startsWith("TERM=") || config.process.env.includes(e)), `${JSON.stringify(config.process.env)} ${JSON.stringify(umociConfig.process.env)}`);
  assert.deepEqual(config.root, { path: "rootfs", readonly: true });
  assert.equal(config.process.noNewPrivileges, true);
  assert.deepEqual(config.process.capabilities.bounding, ["CAP_NET_BIND_SERVICE"]);
  assert.deepEqual(config.linux.resources, { memory: { limit: 67108864 }, pids: { limit: 32 } });
  assert.deepEqual(config.linux.namespaces.map((n) => n.type), ["pid", "network", "ipc", "uts", "mount", "cgroup"]);
  const mounts = new Map(config.mounts.map((m) => [m.destination, m.options.join(",")]));
  assert.equal(mounts.get("/run/app"), "nosuid,nodev,mode=0700,uid=1500,gid=1600");
  assert.equal(mounts.get("/data"), "nosuid,nodev,mode=0700,uid=1500,gid=1600", "the image's volume is a tmpfs of its own");
  const denied = config.linux.seccomp.syscalls[0];
  assert.equal(config.linux.seccomp.defaultAction, "SCMP_ACT_ALLOW");
  assert.ok(denied?.names.includes("ptrace") && denied.names.includes("iopl") && denied.action === "SCMP_ACT_ERRNO", JSON.stringify(denied));
  assert.match(bundle.notes[0]!, new RegExp(`^container app: ${digest} \\(manifest sha256:[0-9a-f]{64}\\), \\d+ entries$`));
});

test("a container's image is used only as pinned: another digest, and a blob changed in the layout, are refused naming the image", { timeout: 120_000 }, async () => {
  const dir = await tempDir();
  const digest = await makeImage(dir);
  const other = `sha256:${"0".repeat(64)}`;
  await assert.rejects(containerBundle(container(other), dir, DEFAULT_ARCH), new RegExp(`container 'app' .*layout\\): the image is ${digest}, but build\\.yaml pins ${other}`));
  await assert.rejects(containerBundle(container(digest, { ref: "nope" }), dir, DEFAULT_ARCH), /no image tagged 'nope' \(tags: t\)/);

  // a byte flipped in the largest blob (a layer)
  const blobs = join(dir, "layout", "blobs", "sha256");
  const { stdout } = await execa("sh", ["-c", `ls -S "${blobs}" | head -n 1`]);
  const blob = join(blobs, stdout.trim());
  const data = await readFile(blob);
  data.writeUInt8(data.readUInt8(data.length >> 1) ^ 0xff, data.length >> 1);
  await writeFile(blob, data);
  await assert.rejects(containerBundle(container(digest), dir, DEFAULT_ARCH), /blob sha256:[0-9a-f]{64} does not match its digest or size: corrupted or tampered/);
});
