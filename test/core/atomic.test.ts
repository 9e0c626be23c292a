import assert from "node:assert/strict";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { moveIntoPlace, writeAtomic, makeAtomic, writeFileAtomic } from "../../src/core/atomic.ts";
import { tempDir } from "../helpers/tmp.ts";

test("writeFileAtomic replaces a file whole and leaves no temporary name behind", async () => {
  const dir = await tempDir();
  const file = join(dir, "out.json");
  await writeFile(file, "old");
  await writeFileAtomic(file, "new");
  assert.equal(await readFile(file, "utf8"), "new");
  assert.deepEqual(await readdir(dir), ["out.json"]);
});

test("a write that fails half-way leaves the old file as it was and no temporary file", async () => {
  const dir = await tempDir();
  const file = join(dir, "disk.raw");
  await writeFile(file, "old");
  const failure = writeAtomic(file, async (handle) => {
    await handle.write(Buffer.from("half"), 0, 4, 0);
    throw new Error("disk full");
  });
  await assert.rejects(failure, /disk full/);
  assert.equal(await readFile(file, "utf8"), "old");
  assert.deepEqual(await readdir(dir), ["disk.raw"]);
});

test("makeAtomic replaces a directory with the one made, or keeps the old one when making it fails; a file the same", async () => {
  const dir = await tempDir();
  const layout = join(dir, "layout");
  await mkdir(layout);
  await writeFile(join(layout, "stale"), "x");
  await makeAtomic(layout, async (tmp) => {
    await mkdir(join(tmp, "blobs"), { recursive: true });
    await writeFile(join(tmp, "index.json"), "{}");
  });
  assert.deepEqual((await readdir(layout)).sort(), ["blobs", "index.json"]);
  await assert.rejects(makeAtomic(layout, () => Promise.reject(new Error("no space"))), /no space/);
  assert.deepEqual((await readdir(layout)).sort(), ["blobs", "index.json"]);
  assert.deepEqual(await readdir(dir), ["layout"]);
  const iso = join(dir, "image.iso");
  await makeAtomic(iso, (tmp) => writeFile(tmp, "made by a tool"));
  assert.equal(await readFile(iso, "utf8"), "made by a tool");
  await assert.rejects(makeAtomic(iso, async (tmp) => { await writeFile(tmp, "half"); throw new Error("tool failed"); }), /tool failed/);
  assert.equal(await readFile(iso, "utf8"), "made by a tool");
  assert.deepEqual((await readdir(dir)).sort(), ["image.iso", "layout"]);
});

test("moveIntoPlace: replace what is there, keep it (the other copy is dropped), or fail and touch neither", async () => {
  const dir = await tempDir();
  const made = async (name: string, content: string) => {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, "f"), content);
    return join(dir, name);
  };
  const final = join(dir, "final");
  assert.equal(await moveIntoPlace(await made("a", "a"), final), true);
  assert.equal(await moveIntoPlace(await made("b", "b"), final), true);
  assert.equal(await readFile(join(final, "f"), "utf8"), "b");
  assert.equal(await moveIntoPlace(await made("c", "c"), final, { whenPresent: "keep", sync: false }), false);
  assert.equal(await readFile(join(final, "f"), "utf8"), "b");
  await assert.rejects(stat(join(dir, "c")), { code: "ENOENT" });
  const d = await made("d", "d");
  await assert.rejects(moveIntoPlace(d, final, { whenPresent: "fail" }), { code: "EEXIST" });
  assert.equal(await readFile(join(d, "f"), "utf8"), "d");
  assert.equal(await readFile(join(final, "f"), "utf8"), "b");
});
