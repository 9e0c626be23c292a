import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import { execa } from "execa";
import { READY_LINE } from "../../src/boot/qemu.ts";
import { DEFAULT_ARCH } from "../../src/core/arch.ts";
import { CAPABILITIES, DENIED_SYSCALLS, parseServiceDefinition, renderServiceFile, SERVICE_FORMAT, type ServiceDefinition } from "../../src/extensions/services.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// init's parsers, built for the host with its gcc from the same sources as init (pkgs/init/src/parse.c),
// and the service format that init and bronze's build must agree on.

const SRC = join(PROJECT_ROOT, "pkgs", "init", "src");
const parseTest = join(await tempDir(), "parse-test");

before(async () => {
  await execa("gcc", ["-Wall", "-Wextra", "-Werror", "-I", SRC, "-o", parseTest, join(PROJECT_ROOT, "pkgs", "init", "test", "parse-test.c"), join(SRC, "parse.c")]);
});

test("init's parsers pass their host-built checks: command line, modules.dep and modules-load.d, sysctl lines, service files", async () => {
  const run = await execa(parseTest, [], { reject: false });
  assert.equal(run.exitCode, 0, run.stdout);
  const passed = Number(/^(\d+) checks passed$/m.exec(run.stdout)?.[1]);
  assert.ok(passed >= 50, `${passed} checks`);
});

/** The #defines of init's service-format.h. */
async function formatHeader(): Promise<Map<string, string>> {
  const text = await readFile(join(SRC, "service-format.h"), "utf8");
  return new Map([...text.matchAll(/^#define (\w+) (.+)$/gm)].map((m) => [m[1] ?? "", (m[2] ?? "").replace(/^"(.*)"$/, "$1")]));
}

test("the service format's limits and the ready line are the same for init and for bronze", async () => {
  const c = await formatHeader();
  assert.equal(c.get("SERVICES_DIR"), `/${SERVICE_FORMAT.dir.replace(/\/$/, "")}`);
  assert.equal(c.get("SERVICE_SUFFIX"), SERVICE_FORMAT.suffix);
  assert.equal(Number(c.get("MAX_SERVICES")), SERVICE_FORMAT.maxServices);
  assert.equal(Number(c.get("MAX_SERVICE_NAME")), SERVICE_FORMAT.maxName);
  assert.equal(Number(c.get("MAX_SERVICE_ARGS")), SERVICE_FORMAT.maxArgs);
  assert.equal(Number(c.get("MAX_SERVICE_COMMAND")), SERVICE_FORMAT.maxCommand);
  assert.equal(Number(c.get("MAX_SERVICE_ARGS_BYTES")), SERVICE_FORMAT.maxArgsBytes);
  assert.equal(Number(c.get("MAX_SERVICE_SYSCALLS")), SERVICE_FORMAT.maxSyscalls);
  assert.equal(Number(c.get("MAX_SERVICE_WRITABLE")), SERVICE_FORMAT.maxWritable);
  assert.equal(Number(c.get("MAX_SERVICE_AFTER")), SERVICE_FORMAT.maxAfter);
  assert.equal(Number(c.get("SERVICE_NOTIFY_FD")), SERVICE_FORMAT.notifyFd);
  assert.equal(c.get("READY_LINE"), READY_LINE);
});

test("init and bronze name the same capabilities, by the same numbers", async () => {
  const header = await readFile(join(SRC, "capabilities.h"), "utf8");
  const list = /CAPABILITY_NAMES\[\] = \{([^}]*)\}/.exec(header)?.[1] ?? "";
  assert.deepEqual([...list.matchAll(/"([a-z_]+)"/g)].map((m) => m[1]), [...CAPABILITIES]);
});

test("init and bronze deny the same syscalls: every arch's, and x86_64's own", async () => {
  const source = await readFile(join(SRC, "confine.c"), "utf8");
  const list = /DENIED\[\] = \{([^}]*)\}/.exec(source)?.[1] ?? "";
  const [common = "", x86 = ""] = list.split(/#if defined\(__x86_64__\)/);
  const names = (text: string) => [...text.matchAll(/SYS_(\w+)/g)].map((m) => m[1]);
  assert.deepEqual(names(common), [...DENIED_SYSCALLS]);
  assert.deepEqual(names(x86), [...DEFAULT_ARCH.deniedSyscalls]);
  assert.equal(DEFAULT_ARCH.name, "x86_64");
});

/** What parse-test prints of a service file: every field init keeps, capabilities by number. */
const asInitReads = (s: ServiceDefinition): string =>
  [
    `name=${s.name}`,
    `command=${s.command}`,
    ...s.args.map((a) => `arg=${a}`),
    `restart=${s.restart}`,
    `user=${s.uid ?? 0}`,
    `group=${s.gid ?? s.uid ?? 0}`,
    ...(s.capabilities ?? []).map((c) => `cap=${CAPABILITIES.indexOf(c as (typeof CAPABILITIES)[number])}`),
    ...(s.syscalls ?? []).map((c) => `syscall=${c}`),
    `network=${s.network ?? "host"}`,
    `memory_max=${s.limits?.memory ?? 0}`,
    `cpu_max=${s.limits?.cpu?.quotaUs ?? 0} ${s.limits?.cpu?.periodUs ?? 0}`,
    `pids_max=${s.limits?.pids ?? 0}`,
    ...(s.writable ?? []).map((p) => `writable=${p}`),
    ...(s.after ?? []).map((a) => `after=${a}`),
    `ready=${s.ready ?? "running"}`,
    ...(s.container ? [`container=${s.container}`] : []),
  ].join("\n");

test("what bronze writes at the limits, init reads back field for field", async () => {
  const dir = await tempDir();
  const longest = {
    name: "n".repeat(SERVICE_FORMAT.maxName),
    command: `/${"c".repeat(SERVICE_FORMAT.maxCommand - 1)}`,
    // as many arguments as init takes, filling its argument bytes exactly
    args: Array.from({ length: SERVICE_FORMAT.maxArgs }, (_, i) => String(i % 10).repeat(SERVICE_FORMAT.maxArgsBytes / SERVICE_FORMAT.maxArgs - 1)),
    restart: "on-failure" as const,
  };
  const confined = parseServiceDefinition("c.yaml", "c.yaml", [
    "name: c",
    "command: /usr/bin/c",
    "user: 4294967294",
    "group: 7",
    `capabilities: [${CAPABILITIES.join(", ")}]`,
    `seccomp: {allow: [${Array.from({ length: SERVICE_FORMAT.maxSyscalls }, (_, i) => `s${i}`).join(", ")}]}`,
    "network: private",
    "limits: {memory: 3G, cpu: 100000%, pids: 4194304}",
    `writable: [${Array.from({ length: SERVICE_FORMAT.maxWritable }, (_, i) => `/var/${String(i).repeat(SERVICE_FORMAT.maxCommand - 5)}`).join(", ")}]`,
    `after: [${Array.from({ length: SERVICE_FORMAT.maxAfter }, (_, i) => String.fromCharCode(97 + i).repeat(SERVICE_FORMAT.maxName)).join(", ")}]`,
    "ready: notify",
  ].join("\n"));
  const container = parseServiceDefinition("box.yaml", "box.yaml", "name: box\ncontainer: /usr/local/lib/containers/box\nafter: [c]\n");
  const services: ServiceDefinition[] = [longest, { name: "hello", command: "/usr/bin/hello", args: ["--greeting", "two words", "x=y"], restart: "never" }, confined, container];
  for (const service of services) {
    const file = join(dir, `${service.name.slice(0, 8)}.service`);
    await writeFile(file, renderServiceFile(service));
    const read = (await execa(parseTest, ["--service", file])).stdout;
    assert.equal(read, asInitReads(service));
  }
  // one byte more than init reads is refused by init too, so bronze's build must refuse it first
  const over = join(dir, "over.service");
  await writeFile(over, renderServiceFile({ ...longest, command: `${longest.command}c` }));
  assert.equal((await execa(parseTest, ["--service", over])).stdout, "invalid: command too long");
});
