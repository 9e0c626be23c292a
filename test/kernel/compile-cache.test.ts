import assert from "node:assert/strict";
import { mkdir, readdir, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { CompileCache, MAX_RECOMPILE_DISTANCE, settingsDistance } from "../../src/kernel/compile-cache.ts";
import { tempDir } from "../helpers/tmp.ts";

const settingsOf = (...lines: string[]) => lines.join("\n") + "\n";

async function compiled(cache: CompileCache, key: string, family: string, settings: string, bytes = 10): Promise<void> {
  const { dir, tree } = await cache.begin(key);
  await writeFile(join(tree, "object.o"), Buffer.alloc(bytes));
  await cache.commit(dir, { key, family, inputs: { config: settings }, config: settings, durationMs: 1 });
}

test("settings distance counts the lines either side lacks", () => {
  assert.equal(settingsDistance(settingsOf("CONFIG_A=y", "CONFIG_B=m"), settingsOf("CONFIG_A=y", "CONFIG_B=m")), 0);
  assert.equal(settingsDistance(settingsOf("CONFIG_A=y", "CONFIG_B=m"), settingsOf("CONFIG_A=y", "CONFIG_B=y")), 2);
  assert.equal(settingsDistance(settingsOf("CONFIG_A=y"), settingsOf("CONFIG_A=y", "CONFIG_C=y")), 1);
});

test("a committed tree is found by key with its record; nothing of the compile's scratch stays", async () => {
  const cache = new CompileCache(await tempDir());
  assert.equal(await cache.lookup("k1"), undefined);
  await compiled(cache, "k1", "f", settingsOf("CONFIG_A=y"), 123);
  const found = await cache.lookup("k1");
  assert.ok(found);
  assert.equal(found.record.bytes, 123);
  assert.deepEqual(await readdir(found.tree), ["object.o"], "the tree holds the compile's files only (no owner mark)");
  assert.deepEqual(await readdir(join(cache.root, "tmp")), []);
});

test("the nearest tree is of the same family and the fewest differing settings, within the bound", async () => {
  const cache = new CompileCache(await tempDir());
  const base = ["CONFIG_A=y", "CONFIG_B=y"];
  await compiled(cache, "near", "f", settingsOf(...base, "CONFIG_C=m"));
  await compiled(cache, "far", "f", settingsOf(...base, "CONFIG_C=m", "CONFIG_D=y", "CONFIG_E=y"));
  await compiled(cache, "other-family", "g", settingsOf(...base));
  assert.equal((await cache.nearest("f", settingsOf(...base)))?.key, "near");
  assert.equal(await cache.nearest("h", settingsOf(...base)), undefined, "no tree of another family");
  const many = Array.from({ length: MAX_RECOMPILE_DISTANCE + 1 }, (_, i) => `CONFIG_X${i}=y`);
  assert.equal(await cache.nearest("g", settingsOf(...base, ...many)), undefined, "too far: a cold compile");
});

test("pruning removes the least recently used trees beyond the bound, never the one just made", async () => {
  const cache = new CompileCache(await tempDir(), 25);
  await compiled(cache, "old", "f", "a\n");
  await compiled(cache, "used", "f", "b\n");
  // "used" last used before "old": only the lookup below can make it the more recent
  const past = (ms: number) => new Date(Date.now() - ms);
  await utimes(join(cache.treesDir, "old", "record.json"), past(60_000), past(60_000));
  await utimes(join(cache.treesDir, "used", "record.json"), past(120_000), past(120_000));
  await cache.lookup("used");
  await compiled(cache, "new", "f", "c\n");
  // which of the two is the more recent is the clocks' to say (the kernel's file times are coarser than Date's)
  assert.deepEqual((await cache.entries()).map((e) => e.key).sort(), ["new", "used"]);
  const big = new CompileCache(await tempDir(), 5);
  await compiled(big, "only", "f", "a\n");
  assert.deepEqual((await big.entries()).map((e) => e.key), ["only"], "a tree over the bound on its own is kept");
});

test("a compile abandoned by a killed build is removed by the next one; a live one is not", async () => {
  const cache = new CompileCache(await tempDir());
  // named for a process that is gone (pid numbers stop well below this one)
  const abandoned = join(cache.root, "tmp", "0123456789abcdef.999999999.deadbeef");
  await mkdir(join(abandoned, "tree"), { recursive: true });
  const live = (await cache.begin("live")).dir;
  await cache.removeAbandoned();
  await assert.rejects(stat(abandoned));
  assert.ok((await stat(live)).isDirectory());
});

test("a compiled tree whose files or bytes differ from its record is discarded with a warning, never sealed", async () => {
  const cache = new CompileCache(await tempDir());
  await compiled(cache, "k", "f", "a\n", 100);
  const tree = (await cache.lookup("k"))!.tree;
  await writeFile(join(tree, "object.o"), Buffer.alloc(99));
  const warnings: string[] = [];
  cache.warn = (line) => warnings.push(line);
  assert.equal(await cache.lookup("k"), undefined);
  assert.match(warnings[0]!, /^compiled kernel tree k is damaged: it holds 1 file\(s\) of 99 bytes, its record says 1 of 100; discarded/);
  assert.deepEqual(await cache.entries(), []);
});

test("a kernel source is unpacked once, checked at each use, unpacked again when damaged, and pruned like trees", async () => {
  const cache = new CompileCache(await tempDir(), 25);
  let unpacked = 0;
  const unpack = async (tree: string) => {
    unpacked++;
    await mkdir(join(tree, "linux"));
    await writeFile(join(tree, "linux", "Makefile"), Buffer.alloc(20));
  };
  const tree = await cache.unpackedSource("s1", unpack);
  assert.equal(await cache.unpackedSource("s1", unpack), tree);
  assert.equal(unpacked, 1, "the second use finds it");
  await writeFile(join(tree, "linux", "Makefile"), "changed");
  const warnings: string[] = [];
  cache.warn = (line) => warnings.push(line);
  await cache.unpackedSource("s1", unpack);
  assert.equal(unpacked, 2);
  assert.match(warnings[0]!, /^unpacked kernel source s1 is damaged: it holds 1 file\(s\) of 7 bytes, its record says 1 of 20; unpacked again$/);
  assert.deepEqual(await readdir(join(cache.root, "tmp")), [], "nothing of the unpacking stays");
  const past = new Date(Date.now() - 60_000);
  await utimes(join(cache.sourcesDir, "s1", "record.json"), past, past);
  await compiled(cache, "tree", "f", "a\n", 10);
  assert.deepEqual(await readdir(cache.sourcesDir), [], "the least recently used, over the bound with the new tree: removed");
  assert.deepEqual((await cache.entries()).map((e) => e.key), ["tree"]);
});
