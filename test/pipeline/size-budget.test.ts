import assert from "node:assert/strict";
import { test } from "node:test";
import { checkSizeBudget, describeOverrun } from "../../src/pipeline/size-budget.ts";

test("the budget compares each artifact with the previous build and lists the components that grew, largest first", () => {
  const previous = { artifacts: { "rootfs.sqsh": 1000, "uki.efi": 5000 }, components: { musl: 700, init: 100, "kernel minimal": 4000 } };
  const current = { artifacts: { "rootfs.sqsh": 1200, "uki.efi": 5100, "uki.signed.efi": 5200 }, components: { musl: 700, init: 150, e2fsprogs: 300, "kernel minimal": 3900 } };
  const verdict = checkSizeBudget(previous, current, 10);
  assert.deepEqual(verdict.overruns, [{ artifact: "rootfs.sqsh", before: 1000, after: 1200, percent: 20 }], "uki.efi grew 2%; a new artifact has no budget yet");
  assert.deepEqual(verdict.grew, [
    { component: "e2fsprogs", before: 0, after: 300 },
    { component: "init", before: 100, after: 150 },
  ]);
  const message = describeOverrun(verdict, 10, "profiles/x.yaml");
  assert.match(message, /rootfs\.sqsh: 1,000 -> 1,200 bytes \(\+20\.0%, budget 10%\)/);
  assert.match(message, /e2fsprogs: new, 300 bytes\n {2}init: 100 -> 150 bytes \(\+50\)/);
  assert.deepEqual(checkSizeBudget(previous, previous, 0).overruns, [], "no growth, no overrun, even at 0%");
});
