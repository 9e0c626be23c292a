// make test: every test file, in lanes that keep both cores busy without letting two tests meet where they
// would disturb each other. Run files alone with `node --test FILE`; this is the whole suite's schedule:
//
//   1. the minimal image the integration tests share is built (its kernel compile takes both cores), and
//      beside it the type and lint checks (make typecheck lint), whose output is held until they end;
//   2. the reproducibility test (its own kernel compile from source, both cores, for ~8 minutes) runs
//      beside the unit tests and the integration tests that build no kernel and do not look for keys
//      on the kernel-key tmpfs; it keeps its keys and temporary files apart (BRONZE_KEY_DIR, TMPDIR),
//      so that the key scans of the other lanes cannot find them;
//   3. once those are done, the other integration tests (they build kernels, and watch the key tmpfs)
//      run, beside the reproducibility test if it still runs: never two kernel builds at once all the
//      same, since every kernel build takes the machine's kernel-build lock (src/core/machine-lock.ts);
//   4. once the first lane and the reproducibility test are done, beside the last integration tests
//      (one at a time, they leave a core idle), the tests of AFTER_REPRO: apart as the reproducibility
//      test is (BRONZE_KEY_DIR, TMPDIR), no kernel built, nothing published that another lane reads.
//
// Each lane is one `node --test` run, one file at a time; the reproducibility lane prints its output
// when it ends, after the others, so that lines of two lanes never mix. The failed tests are named again
// at the end, above the lanes' summary. Exit code 1 when any lane fails.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { start } from "../src/core/exec.ts";
import type { FailedTest } from "./failed-tests-reporter.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const REPRO = "test/repro/run.integration.test.ts";
/** the integration tests of the first lane beside the reproducibility test: no kernel built, no look at the key tmpfs */
const BESIDE_REPRO = new Set([
  "test/cache/remote.integration.test.ts",
  "test/disk/formats.integration.test.ts",
  "test/disk/image.integration.test.ts",
  "test/disk/iso.integration.test.ts",
  "test/disk/pxe.integration.test.ts",
  "test/extensions/assemble.integration.test.ts",
  "test/extensions/containers.integration.test.ts",
  "test/extensions/services.integration.test.ts",
  "test/factory/catalog.integration.test.ts",
  "test/factory/server.integration.test.ts",
  "test/kernel/config.integration.test.ts",
  "test/kernel/module-sig.integration.test.ts",
  "test/pipeline/pipeline.integration.test.ts",
  "test/pipeline/size-budget.integration.test.ts",
  "test/pkgs/build-set.integration.test.ts",
  "test/pkgs/musl.integration.test.ts",
  "test/pkgs/scaffold.integration.test.ts",
  "test/profile/profile.integration.test.ts",
  "test/registry/client.integration.test.ts",
  "test/registry/copy.integration.test.ts",
  "test/registry/signatures.integration.test.ts",
  "test/report/html.integration.test.ts",
  "test/secureboot/signer.integration.test.ts",
  "test/uki/measured-boot.integration.test.ts",
  "test/vuln/scan.integration.test.ts",
]);

/** integration tests of the first lane's kind that mostly wait (on a fault proxy, on a machine booting under TCG) */
const AFTER_REPRO = new Set(["test/disk/upgrade.integration.test.ts", "test/registry/upload.integration.test.ts"]);

/** where the reproducibility test's builds keep their ephemeral keys and temporary files, apart */
const REPRO_APART = { BRONZE_KEY_DIR: `/dev/shm/bronze-lane-repro-${process.pid}`, TMPDIR: `/var/tmp/bronze-lane-repro-${process.pid}` };

interface Lane {
  name: string;
  files: string[];
  /** print its output as it comes (else when it ends) */
  live: boolean;
  env?: Record<string, string>;
}

interface LaneResult {
  name: string;
  ok: boolean;
  seconds: number;
}

const junit = process.env.TEST_JUNIT || undefined;
const junitOf = (lane: string) => `${junit}.${lane}`;
/** where each lane's reporter lists its failed tests, a JSON line each */
const failuresDir = await mkdtemp(join(tmpdir(), "bronze-test-failures-"));
const failuresOf = (lane: string) => join(failuresDir, `${lane}.jsonl`);
const MAX_FAILURES_SHOWN = 10;

/** Runs a command, printing its output live or when it ends; whether it succeeded. */
async function runLane(name: string, command: string, args: string[], live: boolean, env?: Record<string, string>): Promise<LaneResult> {
  const started = Date.now();
  const held: string[] = [];
  const child = await start(command, args, (chunk) => (live ? process.stdout.write(chunk) : held.push(chunk)), env);
  const { exitCode } = await child.ended;
  const seconds = (Date.now() - started) / 1000;
  if (!live) process.stdout.write(`\n--- ${name} (ran beside the lanes above) ---\n${held.join("")}`);
  console.log(`# lane ${name}: ${exitCode === 0 ? "passed" : `FAILED (exit ${exitCode})`} in ${seconds.toFixed(0)} s`);
  return { name, ok: exitCode === 0, seconds };
}

function testLane(lane: Lane): Promise<LaneResult> {
  if (lane.files.length === 0) return Promise.resolve({ name: lane.name, ok: true, seconds: 0 });
  const reporters = ["--test-reporter=spec", "--test-reporter-destination=stdout"];
  reporters.push(`--test-reporter=${join(ROOT, "scripts", "failed-tests-reporter.ts")}`, `--test-reporter-destination=${failuresOf(lane.name)}`);
  if (junit) reporters.push("--test-reporter=junit", `--test-reporter-destination=${junitOf(lane.name)}`);
  return runLane(lane.name, process.execPath, ["--test", "--test-concurrency=1", ...reporters, ...lane.files], lane.live, lane.env);
}

/** The lanes' JUnit reports as one, in TEST_JUNIT. */
async function mergeJunit(lanes: readonly string[]): Promise<void> {
  if (!junit) return;
  const suites: string[] = [];
  for (const lane of lanes) {
    const text = await readFile(junitOf(lane), "utf8").catch(() => "");
    suites.push(text.replace(/^<\?xml[^>]*>\s*/, "").replace(/^<testsuites>\s*/, "").replace(/\s*<\/testsuites>\s*$/, ""));
    await rm(junitOf(lane), { force: true });
  }
  await writeFile(junit, `<?xml version="1.0" encoding="utf-8"?>\n<testsuites>\n${suites.filter(Boolean).join("\n")}\n</testsuites>\n`);
}

/** The failed tests of every lane, a line or a few each: the end of a long log names them. */
async function failureSummary(lanes: readonly string[]): Promise<string[]> {
  const failed: FailedTest[] = [];
  for (const lane of lanes) {
    const text = await readFile(failuresOf(lane), "utf8").catch(() => "");
    failed.push(...text.split("\n").filter(Boolean).map((line) => JSON.parse(line) as FailedTest));
  }
  if (failed.length === 0) return [];
  const shown = failed.slice(0, MAX_FAILURES_SHOWN).flatMap((test) => [
    `✖ ${relative(ROOT, test.file)}:${test.line} ${test.name} (${test.seconds.toFixed(1)} s)`,
    ...test.why.map((line) => `    ${line}`),
  ]);
  const more = failed.length > MAX_FAILURES_SHOWN ? [`… and ${failed.length - MAX_FAILURES_SHOWN} more (above, in their lanes)`] : [];
  return [`\n# failed tests: ${failed.length}`, ...shown, ...more];
}

async function main(files: string[]): Promise<boolean> {
  const integration = files.filter((f) => f.endsWith(".integration.test.ts"));
  const unit = files.filter((f) => !integration.includes(f));
  const beside: Lane = { name: "beside-repro", files: [...unit, ...integration.filter((f) => BESIDE_REPRO.has(f))], live: true };
  const repro: Lane = { name: "repro", files: integration.filter((f) => f === REPRO), live: false, env: REPRO_APART };
  const afterRepro: Lane = { name: "after-repro", files: integration.filter((f) => AFTER_REPRO.has(f)), live: false, env: REPRO_APART };
  const after: Lane = { name: "integration", files: integration.filter((f) => f !== REPRO && !BESIDE_REPRO.has(f) && !AFTER_REPRO.has(f)), live: true };
  const results: LaneResult[] = [];
  const checks = runLane("type and lint checks (make typecheck lint)", "make", ["--no-print-directory", "typecheck", "lint"], integration.length === 0);
  if (integration.length > 0) {
    results.push(await runLane("shared minimal image (bronze build --profile minimal)", join(ROOT, "bin", "bronze"), ["build", "--profile", "minimal"], true));
    results.push(await checks);
    if (results.every((r) => r.ok)) {
      await Promise.all(Object.values(REPRO_APART).map((dir) => mkdir(dir, { recursive: true })));
      try {
        const [besideDone, reproDone] = [testLane(beside), testLane(repro)];
        const [afterResult, afterReproResult] = await Promise.all([besideDone.then(() => testLane(after)), Promise.all([besideDone, reproDone]).then(() => testLane(afterRepro))]);
        results.push(await besideDone, await reproDone, afterResult, afterReproResult);
      } finally {
        await Promise.all(Object.values(REPRO_APART).map((dir) => rm(dir, { recursive: true, force: true })));
      }
    }
  } else {
    results.push(await checks);
    if (results.every((r) => r.ok)) results.push(await testLane({ ...beside, name: "unit" }));
  }
  const lanes = ["unit", beside.name, repro.name, after.name, afterRepro.name];
  await mergeJunit(lanes);
  for (const line of await failureSummary(lanes)) console.log(line);
  await rm(failuresDir, { recursive: true, force: true });
  console.log(`\n# lanes: ${results.map((r) => `${r.name} ${r.ok ? "ok" : "FAILED"} ${r.seconds.toFixed(0)} s`).join(", ")}`);
  return results.every((r) => r.ok);
}

process.chdir(ROOT);
process.exitCode = (await main(process.argv.slice(2))) ? 0 : 1;
