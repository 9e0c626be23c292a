import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { cachedStep, type CachedStep, type StepContext } from "../../src/core/step.ts";
import { Store } from "../../src/core/store.ts";
import { tempDir } from "../helpers/tmp.ts";

/** A step that writes one file; counts how often it was made and served. */
function counting(inputs: Record<string, unknown>, fail = false) {
  const seen = { produced: 0, served: 0 };
  const step: CachedStep<{ key: string; text: string }> = {
    name: "greeting",
    inputs,
    produce: async (outDir) => {
      seen.produced++;
      await writeFile(join(outDir, "hello.txt"), `hello ${String(inputs.who)}\n`);
      if (fail) throw new Error("the step failed half-way");
      return { who: String(inputs.who) };
    },
    artifact: (entry) => ({ key: entry.key, text: entry.record.facts.who ?? "" }),
    whenServed: async () => {
      seen.served++;
    },
  };
  return { step, seen };
}

test("a cached step is made once, recorded as ran, and served (checked) after; other inputs make another entry", async () => {
  const ctx = { store: new Store(await tempDir()), ran: [] as string[], served: [] as StepContext["served"] };
  const first = counting({ who: "world" });
  const made = await cachedStep(ctx, first.step);
  assert.deepEqual([first.seen, ctx.ran], [{ produced: 1, served: 0 }, ["greeting"]]);
  assert.equal(made.text, "world");
  assert.equal(await readFile(join(ctx.store.root, "store", made.key, "out", "hello.txt"), "utf8"), "hello world\n");

  const again = counting({ who: "world" });
  const servedCtx = { store: ctx.store, ran: [] as string[], served: [] as StepContext["served"] };
  assert.deepEqual(await cachedStep(servedCtx, again.step), made);
  assert.deepEqual([again.seen, servedCtx.ran], [{ produced: 0, served: 1 }, []]);
  // served: with the time its entry took when it was made
  assert.equal(servedCtx.served.length, 1);
  assert.equal(servedCtx.served[0]?.name, "greeting");
  assert.equal(servedCtx.served[0]?.builtMs, (await ctx.store.lookup(made.key))?.record.durationMs);

  const other = await cachedStep(servedCtx, counting({ who: "bronze" }).step);
  assert.notEqual(other.key, made.key);
  assert.deepEqual(servedCtx.ran, ["greeting"]);
});

test("a step that fails leaves no entry: the next run makes it again", async () => {
  const ctx = { store: new Store(await tempDir()), ran: [] as string[], served: [] as StepContext["served"] };
  await assert.rejects(cachedStep(ctx, counting({ who: "x" }, true).step), /failed half-way/);
  assert.deepEqual(await readdir(join(ctx.store.root, "store")).catch(() => []), []);
  const retry = counting({ who: "x" });
  await cachedStep(ctx, retry.step);
  assert.equal(retry.seen.produced, 1);
});
