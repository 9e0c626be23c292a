import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import { execa } from "execa";
import { READY_LINE } from "../../src/boot/qemu.ts";
import { renderServiceFile, SERVICE_FORMAT } from "../../src/extensions/services.ts";
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
  assert.equal(c.get("READY_LINE"), READY_LINE);
});

test("what bronze writes at the limits, init reads back field for field", async () => {
  const dir = await tempDir();
  const longest = {
    name: "n".repeat(SERVICE_FORMAT.maxName),
    command: `/${"c".repeat(SERVICE_FORMAT.maxCommand - 1)}`,
    // as many arguments as init takes, filling its argument bytes exactly
    args: Array.from({ length: SERVICE_FORMAT.maxArgs }, (_, i) => String(i % 10).repeat(SERVICE_FORMAT.maxArgsBytes / SERVICE_FORMAT.maxArgs - 1)),
    restart: "on-failure" as const,
  };
  for (const service of [longest, { name: "hello", command: "/usr/bin/hello", args: ["--greeting", "two words", "x=y"], restart: "never" as const }]) {
    const file = join(dir, `${service.name.slice(0, 8)}.service`);
    await writeFile(file, renderServiceFile(service));
    const read = (await execa(parseTest, ["--service", file])).stdout;
    assert.equal(read, [`name=${service.name}`, `command=${service.command}`, ...service.args.map((a) => `arg=${a}`), `restart=${service.restart}`].join("\n"));
  }
  // one byte more than init reads is refused by init too, so bronze's build must refuse it first
  const over = join(dir, "over.service");
  await writeFile(over, renderServiceFile({ ...longest, command: `${longest.command}c` }));
  assert.equal((await execa(parseTest, ["--service", over])).stdout, "invalid: command too long");
});
