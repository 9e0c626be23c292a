import assert from "node:assert/strict";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { isAbandoned, ownedName, ownedWorkDir } from "../../src/core/ownership.ts";
import { tempDir } from "../helpers/tmp.ts";

test("directories whose owner is gone, or that no process claimed, are abandoned; live ones are not", async () => {
  const parent = await tempDir();
  const mine = join(parent, "mine");
  const dead = join(parent, "dead");
  const unclaimed = join(parent, "unclaimed");
  const alive = join(parent, "alive");
  for (const dir of [mine, dead, unclaimed, alive]) await mkdir(dir);
  await writeFile(join(mine, ".owner.pid"), String(process.pid));
  const finished = await execa("sh", ["-c", "echo $$"]);
  await writeFile(join(dead, ".owner.pid"), finished.stdout.trim());
  const sleeper = execa("sleep", ["30"]);
  await writeFile(join(alive, ".owner.pid"), String(sleeper.pid));
  try {
    const abandoned = [];
    for (const name of (await readdir(parent)).sort()) if (await isAbandoned(join(parent, name))) abandoned.push(name);
    assert.deepEqual(abandoned, ["dead", "unclaimed"]);
  } finally {
    sleeper.kill();
    await sleeper.catch(() => undefined);
  }
});

test("a directory named for its process is that process's from the moment it exists, before any claim", async () => {
  const parent = await tempDir();
  const finished = await execa("sh", ["-c", "echo $$"]);
  const fresh = join(parent, ownedName("bronze-modkey"));
  const left = join(parent, `bronze-modkey.${finished.stdout.trim()}.0badc0de`);
  for (const dir of [fresh, left]) await mkdir(dir);
  assert.equal(await isAbandoned(fresh), false, "made a moment ago by this process, not yet claimed");
  assert.equal(await isAbandoned(left), true, "its process is gone");
});

test("work directories are this process's own: two for one step differ, and what a dead build left goes", async () => {
  const parent = await tempDir();
  const finished = await execa("sh", ["-c", "echo $$"]);
  const left = join(parent, `musl-0123456789ab.${finished.stdout.trim()}.0badc0de`);
  await mkdir(left);
  await writeFile(join(parent, "not-owned"), "");
  const first = await ownedWorkDir(parent, "musl-0123456789ab");
  const second = await ownedWorkDir(parent, "musl-0123456789ab");
  assert.notEqual(first, second);
  for (const dir of [first, second]) assert.match(dir.slice(parent.length + 1), new RegExp(`^musl-0123456789ab\\.${process.pid}\\.[0-9a-f]{8}$`));
  assert.deepEqual(await readdir(parent), ["not-owned"], "the dead build's directory is gone; the new ones are not made yet");
});
