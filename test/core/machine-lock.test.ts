import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { withMachineLock } from "../../src/core/machine-lock.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

test("work under the machine's lock runs one at a time, across processes; the one that waits is told", async () => {
  process.env.BRONZE_LOCK_DIR = await tempDir();
  const events: string[] = [];
  const waited: string[] = [];
  // no fixed delays: on a loaded machine (make test's other lanes compile a kernel) flock may take a while
  // to start; a holds the lock until b is told to wait (or 10 s pass, and the assertions say what happened)
  let toldB = () => {};
  const bWaits = new Promise<void>((resolve) => (toldB = resolve));
  const job = (name: string, hold: () => Promise<unknown>) =>
    withMachineLock(
      "kernel-build",
      (path) => {
        waited.push(`${name} ${path}`);
        if (name === "b") toldB();
      },
      async () => {
        events.push(`${name} start`);
        await hold();
        events.push(`${name} end`);
      },
    );
  const first = job("a", () => Promise.race([bWaits, sleep(10_000, undefined, { ref: false })]));
  while (!events.includes("a start")) await sleep(5);
  await Promise.all([first, job("b", () => sleep(10))]);
  assert.deepEqual(events, ["a start", "a end", "b start", "b end"]);
  assert.deepEqual(waited, [`b ${join(process.env.BRONZE_LOCK_DIR, "bronze-kernel-build.lock")}`]);

  // another process holds it: this one waits until that one is killed outright (SIGKILL), then runs
  const holder = execa(process.execPath, ["--input-type=module", "-e", `const { withMachineLock } = await import(${JSON.stringify(join(PROJECT_ROOT, "src/core/machine-lock.ts"))}); await withMachineLock("kernel-build", () => {}, async () => { console.log("holding"); await new Promise(() => setInterval(() => {}, 1000)); });`], { env: { BRONZE_LOCK_DIR: process.env.BRONZE_LOCK_DIR }, reject: false, buffer: false });
  await new Promise<void>((resolve) => holder.stdout?.on("data", (c: Buffer) => c.toString().includes("holding") && resolve()));
  let ran = false;
  const mine = withMachineLock("kernel-build", () => events.push("told to wait"), async () => void (ran = true));
  await sleep(300);
  assert.equal(ran, false, "held by the other process");
  holder.kill("SIGKILL");
  await mine;
  assert.equal(ran, true);
  assert.equal(events.at(-1), "told to wait");
  delete process.env.BRONZE_LOCK_DIR;
});
