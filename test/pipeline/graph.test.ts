import assert from "node:assert/strict";
import { test } from "node:test";
import { checkGraph, JobBudget, runGraph, type GraphNode, type NodeOutcome } from "../../src/pipeline/graph.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Nodes that record when they run; `fails` names the ones that throw. */
function graph(spec: Record<string, string[]>, fails: readonly string[] = [], ms = 30) {
  const log: string[] = [];
  let running = 0;
  let peak = 0;
  const nodes: GraphNode[] = Object.entries(spec).map(([id, deps]) => ({
    id,
    deps,
    run: async () => {
      running++;
      peak = Math.max(peak, running);
      log.push(`start ${id}`);
      await sleep(ms);
      running--;
      log.push(`end ${id}`);
      if (fails.includes(id)) throw new Error(`${id} broke`);
    },
  }));
  return { nodes, log, peak: () => peak };
}

async function settle(outcomes: Map<string, Promise<NodeOutcome>>): Promise<Record<string, NodeOutcome>> {
  const done: Record<string, NodeOutcome> = {};
  for (const [id, outcome] of outcomes) done[id] = await outcome;
  return done;
}

test("independent nodes run at the same time, never more than the budget, each after its dependencies", async () => {
  const g = graph({ musl: [], init: ["musl"], e2fsprogs: ["musl"], kernel: [], rootfs: ["init", "e2fsprogs", "kernel"] });
  const outcomes = await settle(runGraph(g.nodes, new JobBudget(2)));
  assert.ok(Object.values(outcomes).every((o) => o.status === "ok"));
  assert.equal(g.peak(), 2);
  assert.deepEqual(g.log.slice(0, 2).sort(), ["start kernel", "start musl"]);
  const at = (line: string) => g.log.indexOf(line);
  assert.ok(at("start init") > at("end musl") && at("start e2fsprogs") > at("end musl"));
  assert.ok(at("start rootfs") > Math.max(at("end init"), at("end e2fsprogs"), at("end kernel")));

  const serial = graph({ a: [], b: [], c: [], d: [] });
  await settle(runGraph(serial.nodes, new JobBudget(1)));
  assert.equal(serial.peak(), 1);
  const wide = graph({ a: [], b: [], c: [], d: [] });
  await settle(runGraph(wide.nodes, new JobBudget(8)));
  assert.equal(wide.peak(), 4);
});

test("a failure stops only its dependants; every failure is reported", async () => {
  const g = graph({ musl: [], init: ["musl"], e2fsprogs: ["musl"], kernel: [], rootfs: ["init", "e2fsprogs", "kernel"], uki: ["rootfs", "kernel"] }, ["init", "kernel"]);
  const started: string[] = [];
  const settled: string[] = [];
  const outcomes = await settle(runGraph(g.nodes, new JobBudget(2), { started: (id) => started.push(id), settled: (id) => settled.push(id) }));
  assert.equal(outcomes.init?.status, "failed");
  assert.equal(outcomes.kernel?.status, "failed");
  assert.match(String((outcomes.kernel as { error: Error }).error.message), /kernel broke/);
  assert.equal(outcomes.e2fsprogs?.status, "ok", "a sibling of the failed node still ran");
  assert.deepEqual(outcomes.rootfs, { status: "blocked", by: ["init", "kernel"] });
  assert.deepEqual(outcomes.uki, { status: "blocked", by: ["init", "kernel"] });
  assert.ok(!g.log.includes("start rootfs") && !g.log.includes("start uki"));
  assert.deepEqual(started.sort(), ["e2fsprogs", "init", "kernel", "musl"]);
  assert.equal(settled.length, 6);
});

test("unknown dependencies, cycles and a budget below one are refused", () => {
  assert.throws(() => checkGraph([{ id: "a", deps: ["nope"] }]), /'a' depends on unknown 'nope'/);
  assert.throws(() => checkGraph([{ id: "a", deps: ["b"] }, { id: "b", deps: ["a"] }]), /cycle a -> b -> a/);
  assert.throws(() => new JobBudget(0), /at least 1/);
});
