import assert from "node:assert/strict";
import { test } from "node:test";
import { InputError } from "../../src/core/errors.ts";
import { enforceExtensionPolicy } from "../../src/extensions/assemble.ts";
import { checkExtension, type ExtensionContent } from "../../src/extensions/policy.ts";
import type { KernelArtifact } from "../../src/kernel/build.ts";
import { makeSigningKey } from "../helpers/modsign.ts";
import { tempDir } from "../helpers/tmp.ts";
import { parseServiceDefinition, renderServiceFile, serviceGraphProblems } from "../../src/extensions/services.ts";
import type { ReadEntry } from "../../src/oci/tar-read.ts";

test("a service definition becomes the line format init reads, arguments in order", () => {
  const service = parseServiceDefinition("hello.yaml", "hello.yaml", 'name: hello\ncommand: /usr/local/bin/hello-service\nargs: ["--interval", 2, "a=b c"]\nrestart: on-failure\n');
  assert.deepEqual(service, {
    name: "hello",
    command: "/usr/local/bin/hello-service",
    args: ["--interval", "2", "a=b c"],
    restart: "on-failure",
    // confined by default: root without capabilities, init's syscall deny-list, the host's network, no limits
    uid: 0,
    gid: 0,
    capabilities: [],
    syscalls: [],
    network: "host",
    limits: {},
    writable: [],
    after: [],
    ready: "running",
  });
  assert.equal(renderServiceFile(service).toString(), "name=hello\ncommand=/usr/local/bin/hello-service\narg=--interval\narg=2\narg=a=b c\nrestart=on-failure\nuser=0\ngroup=0\n");
  assert.equal(parseServiceDefinition("x.yaml", "x.yaml", "name: x\ncommand: /usr/local/bin/x\n").restart, "always");
});

test("a confined service's user, capabilities, syscalls, network, limits, writable paths, dependencies and readiness reach init's format", () => {
  const text = [
    "name: probe",
    "command: /usr/local/bin/probe",
    "user: 1000",
    "capabilities: [net_bind_service, chown]",
    "seccomp: {allow: [read, write, exit_group]}",
    "network: private",
    "limits: {memory: 16M, cpu: 150%, pids: 32}",
    "writable: [/var/lib/probe, /var/cache/probe]",
    "after: [hello]",
    "ready: notify",
  ].join("\n");
  const service = parseServiceDefinition("probe.yaml", "probe.yaml", text);
  assert.equal(service.gid, 1000, "the group defaults to the user's number");
  assert.deepEqual(service.capabilities, ["chown", "net_bind_service"], "in capability order");
  assert.deepEqual(service.limits, { memory: 16 * 1024 * 1024, cpu: { quotaUs: 150_000, periodUs: 100_000 }, pids: 32 });
  assert.equal(
    renderServiceFile(service).toString(),
    [
      "name=probe",
      "command=/usr/local/bin/probe",
      "restart=always",
      "user=1000",
      "group=1000",
      "cap=chown",
      "cap=net_bind_service",
      "syscall=read",
      "syscall=write",
      "syscall=exit_group",
      "network=private",
      "memory_max=16777216",
      "cpu_max=150000 100000",
      "pids_max=32",
      "writable=/var/lib/probe",
      "writable=/var/cache/probe",
      "after=hello",
      "ready=notify",
      "",
    ].join("\n"),
  );
  assert.equal(parseServiceDefinition("m.yaml", "m.yaml", "name: m\ncommand: /m\nlimits: {memory: 4096}\n").limits?.memory, 4096, "bytes without a unit");
});

test("a container service is crun running the bundle, with only restart, after and ready of init's keys", () => {
  const service = parseServiceDefinition("box.yaml", "box.yaml", "name: box\ncontainer: /usr/local/lib/containers/box\nrestart: on-failure\nafter: [probe]\n");
  assert.equal(service.command, "/usr/bin/crun");
  assert.deepEqual(service.args, ["--root", "/run/crun", "run", "--no-pivot", "--bundle", "/usr/local/lib/containers/box", "box"]);
  assert.match(renderServiceFile(service).toString(), /^restart=on-failure\ncontainer=\/usr\/local\/lib\/containers\/box\nafter=probe\n$/m);
  const refused = (text: string, message: RegExp) => assert.throws(() => parseServiceDefinition("box.yaml", "box.yaml", `name: box\n${text}`), (e: unknown) => e instanceof InputError && message.test(e.message));
  refused("container: /b\ncommand: /bin/x\n", /box\.yaml:3: a container service has no 'command': crun runs \/b, and its config\.json says/);
  refused("container: /b\nuser: 5\n", /box\.yaml:3: a container service has no 'user'/);
  refused("container: /b\nready: notify\n", /box\.yaml:3: a container service is ready once it has run 2 s/);
  refused("container: b/\n", /box\.yaml:2: container 'b\/' must be the absolute, normalized path of an OCI runtime bundle/);
});

test("the services of an image: a dependency on a service it lacks, and a cycle, are named", () => {
  assert.deepEqual(serviceGraphProblems([{ name: "a", after: [] }, { name: "b", after: ["a"] }]), []);
  assert.deepEqual(serviceGraphProblems([{ name: "b", after: ["gone"] }]), [{ service: "b", problem: "comes after 'gone', which is not a service of this image" }]);
  assert.deepEqual(serviceGraphProblems([{ name: "a", after: ["c"] }, { name: "b", after: ["a"] }, { name: "c", after: ["b"] }]), [
    { service: "a", problem: "its dependencies form a cycle (a -> c -> b -> a): none of them would start" },
  ]);
});

test("bad service definitions name the file, the line and the fix", () => {
  const refused = (text: string, message: RegExp, file = "svc.yaml") =>
    assert.throws(() => parseServiceDefinition(`usr/lib/bronze/services/${file}`, file, text), (e: unknown) => e instanceof InputError && message.test(e.message));
  refused("name: svc\ncommand: /bin/x\nrestart: sometimes\n", /svc\.yaml:3.*restart 'sometimes' is not known; use always, on-failure, never/);
  refused("name: other\ncommand: /bin/x\n", /svc\.yaml:1.*named 'other' but its file is svc\.yaml/);
  refused("name: svc\ncommand: bin/x\n", /svc\.yaml:2.*must be an absolute, normalized path/);
  refused("name: svc\ncommand: /usr/../bin/x\n", /svc\.yaml:2.*absolute, normalized path/);
  refused("name: svc\ncommand: /bin/x\nuser: nobody\n", /svc\.yaml:3.*'user' must be a whole number/);
  refused("name: svc\ncommand: /bin/x\nuser: 4294967295\n", /svc\.yaml:3.*user 4294967295 is above 4294967294/);
  refused("name: svc\ncommand: /bin/x\ncapabilities: [CAP_CHOWN]\n", /svc\.yaml:3.*lowercase, without CAP_/);
  refused("name: svc\ncommand: /bin/x\ncapabilities: [root]\n", /svc\.yaml:3.*capability 'root' is not known; use one of: chown, /);
  refused("name: svc\ncommand: /bin/x\ncapabilities: [chown, chown]\n", /svc\.yaml:3.*'chown' is named twice/);
  refused("name: svc\ncommand: /bin/x\nseccomp: {allow: []}\n", /svc\.yaml:3.*names at least one syscall; leave seccomp out for init's deny-list/);
  refused("name: svc\ncommand: /bin/x\nseccomp: {deny: [read]}\n", /svc\.yaml:3.*unknown key 'deny' in 'seccomp'; allowed: allow/);
  refused("name: svc\ncommand: /bin/x\nseccomp:\n  allow: [read, Write]\n", /svc\.yaml:4.*'seccomp\.allow\.1' 'Write' is not valid: a syscall name/);
  refused("name: svc\ncommand: /bin/x\nnetwork: none\n", /svc\.yaml:3.*network 'none' is not known; use host or private/);
  refused("name: svc\ncommand: /bin/x\nlimits:\n  memory: 1T\n", /svc\.yaml:4.*memory '1T' is not a size/);
  refused("name: svc\ncommand: /bin/x\nlimits:\n  cpu: 0.5\n", /svc\.yaml:4.*'limits\.cpu' is read as the number 0\.5/);
  refused("name: svc\ncommand: /bin/x\nlimits:\n  cpu: 0%\n", /svc\.yaml:4.*cpu '0%' is not a share/);
  refused("name: svc\ncommand: /bin/x\nlimits:\n  pids: 0\n", /svc\.yaml:4.*pids must be at least 1/);
  refused("name: svc\ncommand: /bin/x\nlimits: {swap: 1}\n", /svc\.yaml:3.*unknown key 'swap' in 'limits'; allowed: memory, cpu, pids/);
  refused("name: svc\ncommand: /bin/x\nwritable: [/etc/svc]\n", /svc\.yaml:3.*an absolute path under \/var\//);
  refused("name: svc\ncommand: /bin/x\nwritable: [/var/lib/../../etc]\n", /svc\.yaml:3.*must be a normalized path under \/var\//);
  refused("name: svc\ncommand: /bin/x\nafter: [svc]\n", /svc\.yaml:3.*cannot come after itself/);
  refused("name: svc\ncommand: /bin/x\nready: tcp\n", /svc\.yaml:3.*ready 'tcp' is not known; use notify \(a line on descriptor 3\) or running/);
  refused(`name: svc\ncommand: /bin/x\nargs: [${Array.from({ length: 33 }, (_, i) => i).join(", ")}]\n`, /svc\.yaml:3.*at most 32 arguments/);
});

const entry = (path: string, data = "", mode = 0o644): ReadEntry => ({ path, type: "file", mode, uid: 0, gid: 0, data: Buffer.from(data) });
const content = (entries: ReadEntry[]): ExtensionContent => ({
  manifest: { name: "svc", version: "1.0.0", author: "t", description: "", compatibility: ">= 0.1.0" },
  entries,
  stray: [],
});

test("the content policy checks service definitions and that modules match the image's kernel release", () => {
  const rules = (entries: ReadEntry[], baseFiles = new Set<string>()) =>
    checkExtension(content(entries), { osVersion: "0.1.0", baseFiles, kernelRelease: "6.1.192-bronze" }).map((v) => [v.path, v.rule, v.detail]);
  const program = entry("usr/local/bin/svc", "#!", 0o755);
  // a definition whose program the extension or the base image has; modules-load.d is an allowed place
  assert.deepEqual(rules([program, entry("usr/lib/bronze/services/svc.yaml", "name: svc\ncommand: /usr/local/bin/svc\n"), entry("usr/lib/modules-load.d/svc.conf", "svc\n")]), []);
  assert.deepEqual(rules([entry("usr/lib/bronze/services/svc.yaml", "name: svc\ncommand: /usr/bin/base-tool\n")], new Set(["usr/bin/base-tool"])), []);
  assert.deepEqual(rules([entry("usr/lib/bronze/services/svc.yaml", "name: svc\ncommand: /usr/local/bin/absent\n")]), [
    ["usr/lib/bronze/services/svc.yaml", "service-definition", "command /usr/local/bin/absent is neither an executable file of the extension nor a file of the base image"],
  ]);
  // without a base (bronze extension build), a command outside the extension waits for the image build's check
  assert.deepEqual(checkExtension(content([entry("usr/lib/bronze/services/svc.yaml", "name: svc\ncommand: /usr/sbin/base-tool\n")]), { osVersion: "0.1.0" }), []);
  assert.deepEqual(rules([entry("usr/local/bin/svc", "#!", 0o644), entry("usr/lib/bronze/services/svc.yaml", "name: svc\ncommand: /usr/local/bin/svc\n")]).map((v) => v[1]), ["service-definition"], "not executable");
  assert.deepEqual(rules([program, entry("usr/lib/bronze/services/svc.service", "name=svc\n")]).map((v) => v[1]), ["service-definition"]);
  const [bad] = rules([program, entry("usr/lib/bronze/services/svc.yaml", "name: svc\ncommand: /usr/local/bin/svc\nrestart: sometimes\n")]);
  assert.equal(bad?.[1], "service-definition");
  assert.match(String(bad?.[2]), /svc\.yaml:3.*restart 'sometimes'/);
  assert.deepEqual(rules([entry("usr/lib/modules/6.1.0-other/extra/x.ko")]), [["usr/lib/modules/6.1.0-other/extra/x.ko", "module-release", "a kernel module outside usr/lib/modules/6.1.192-bronze/, the release of this image's kernel"]]);
  assert.deepEqual(rules([entry("usr/lib/modules/6.1.192-bronze/extra/x.ko")]), []);

  // a container service: its bundle's config.json and program, and crun in the base image
  const box = "usr/local/lib/containers/box";
  const definition = entry("usr/lib/bronze/services/box.yaml", `name: box\ncontainer: /${box}\n`);
  const config = (spec: unknown) => entry(`${box}/config.json`, JSON.stringify(spec));
  const good = { root: { path: "rootfs", readonly: true }, process: { args: ["/bin/probe", "x"] } };
  const withCrun = new Set(["usr/bin/crun"]);
  assert.deepEqual(rules([definition, config(good), entry(`${box}/rootfs/bin/probe`, "\x7fELF", 0o755)], withCrun), []);
  const detail = (entries: ReadEntry[], base = withCrun) => rules(entries, base).map((v) => v[2]);
  assert.deepEqual(detail([definition, config(good), entry(`${box}/rootfs/bin/probe`, "", 0o755)], new Set()), [`container /${box}: the base image has no container runtime (/usr/bin/crun; the crun package)`]);
  assert.deepEqual(detail([definition]), [`container /${box}: the extension has no /${box}/config.json (an OCI runtime bundle: config.json and rootfs/)`]);
  assert.match(String(detail([definition, entry(`${box}/config.json`, "{")])[0]), /config\.json is not JSON/);
  assert.match(String(detail([definition, config({ ...good, root: { path: "rootfs" } })])[0]), /root must be \{"path": "rootfs", "readonly": true\}/);
  assert.deepEqual(detail([definition, config(good)]), [`container /${box}: its program /bin/probe is not an executable file of rootfs/`]);
});

test("extensions are checked together: a second extension of the same name, and a file an earlier extension has, are refused with every other violation", async () => {
  const dir = await tempDir();
  const ours = await makeSigningKey(dir, "ours");
  const kernel = { signingCert: ours.der, release: "6.1.192-bronze" } as KernelArtifact;
  const ext = (name: string, entries: ReadEntry[]) => ({ content: { ...content(entries), manifest: { ...content([]).manifest, name } }, origin: { kind: "build" as const, dir } });
  const first = ext("one", [entry("usr/share/one/a.txt")]);
  const again = ext("one", [entry("usr/share/one/b.txt")]);
  const overlap = ext("two", [entry("usr/share/one/a.txt"), entry("usr/share/base.txt")]);
  await enforceExtensionPolicy([first], { osVersion: "0.1.0", baseFiles: new Set(), kernel });
  await assert.rejects(
    enforceExtensionPolicy([first, again, overlap], { osVersion: "0.1.0", baseFiles: new Set(["usr/share/base.txt"]), kernel }),
    (e: unknown) => {
      assert.ok(e instanceof InputError);
      assert.match(e.message, /^3 violation\(s\) of the extension content policy:/);
      assert.match(e.message, /extension 'one': manifest\.yaml: overwrite: another extension of this image has the same name/);
      assert.match(e.message, /extension 'two': usr\/share\/one\/a\.txt: overwrite: replaces a file of extension 'one'/);
      assert.match(e.message, /extension 'two': usr\/share\/base\.txt: overwrite: replaces a file of the base image/);
      return true;
    },
  );
});
