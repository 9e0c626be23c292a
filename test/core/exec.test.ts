import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { StepError } from "../../src/core/errors.ts";
import { probe, run, start } from "../../src/core/exec.ts";
import { tempDir } from "../helpers/tmp.ts";

test("run returns stdout; a failure is a StepError naming the command, the exit code and the end of the output", async () => {
  assert.equal(await run("sh", ["-c", "echo out; echo err >&2"]), "out");
  const failed = await run("sh", ["-c", "for i in $(seq 1 60); do echo line $i; done; exit 3"]).catch((e: unknown) => e);
  assert.ok(failed instanceof StepError);
  assert.match(failed.message, /^sh failed \(exit code 3\)/);
  assert.match(failed.logTail, /line 60$/);
  assert.doesNotMatch(failed.logTail, /^line 20$/m, "only the last 40 lines");
});

test("run with a log file appends the command line and its output there, and points to it on failure", async () => {
  const log = join(await tempDir(), "logs", "step.log");
  await run("sh", ["-c", "echo first"], { logFile: log });
  const failed = await run("sh", ["-c", "echo second; exit 1"], { logFile: log }).catch((e: unknown) => e);
  assert.ok(failed instanceof StepError);
  assert.match(failed.message, new RegExp(`full log: ${log}`));
  assert.equal(await readFile(log, "utf8"), `+ sh -c echo first\nfirst\n+ sh -c echo second; exit 1\nsecond\n`);
});

test("run passes input on stdin and replaces the environment when asked", async () => {
  assert.equal(await run("cat", [], { input: "piped" }), "piped");
  assert.equal(await run("sh", ["-c", 'echo "${HOME:-unset} $ONLY"'], { env: { ONLY: "this", PATH: process.env.PATH ?? "" }, cleanEnv: true }), "unset this");
});

test("probe answers instead of throwing: exit code, output, a command that is not there, a timeout", async () => {
  const answer = await probe("sh", ["-c", "echo yes; echo no >&2; exit 4"]);
  assert.deepEqual([answer.exitCode, answer.notFound, answer.stdout, answer.stderr, answer.all], [4, false, "yes", "no", "yes\nno"]);
  const missing = await probe("bronze-no-such-command", []);
  assert.equal(missing.notFound, true);
  assert.equal(missing.exitCode, undefined);
  const slow = await probe("sleep", ["5"], { timeoutMs: 100 });
  assert.equal(slow.exitCode, undefined);
  assert.equal(slow.notFound, false);
});

test("start streams stdout and stderr as they come, and a kill ends the process", async () => {
  const chunks: string[] = [];
  const child = await start("sh", ["-c", "echo ready; echo warn >&2; exec sleep 30"], (chunk) => chunks.push(chunk));
  while (!chunks.join("").includes("warn")) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.match(chunks.join(""), /ready\n/);
  child.kill();
  assert.deepEqual(await child.ended, { exitCode: undefined, signal: "SIGKILL" });
  const done = await start("sh", ["-c", "exit 7"], () => undefined);
  assert.deepEqual(await done.ended, { exitCode: 7, signal: undefined });
});
