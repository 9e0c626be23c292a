import assert from "node:assert/strict";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { claim, removeAbandoned } from "../../src/core/ownership.ts";
import { tempDir } from "../helpers/tmp.ts";

test("directories whose owner is gone, or that no process claimed, are removed; live ones stay", async () => {
  const parent = await tempDir();
  const mine = join(parent, "mine");
  const dead = join(parent, "dead");
  const unclaimed = join(parent, "unclaimed");
  const alive = join(parent, "alive");
  for (const dir of [mine, dead, unclaimed, alive]) await mkdir(dir);
  await claim(mine);
  const finished = await execa("sh", ["-c", "echo $$"]);
  await writeFile(join(dead, ".owner.pid"), finished.stdout.trim());
  const sleeper = execa("sleep", ["30"]);
  await writeFile(join(alive, ".owner.pid"), String(sleeper.pid));
  try {
    const removed = (await removeAbandoned(parent)).map((p) => p.slice(parent.length + 1)).sort();
    assert.deepEqual(removed, ["dead", "unclaimed"]);
    assert.deepEqual((await readdir(parent)).sort(), ["alive", "mine"]);
  } finally {
    sleeper.kill();
    await sleeper.catch(() => undefined);
  }
});
