import assert from "node:assert/strict";
import { test } from "node:test";
import { Command } from "commander";
import { COMMAND_GROUPS, groupsFor } from "../../src/cli/commands.ts";

const env = { projectRoot: "/nonexistent", commandLine: [] };

test("each command group registers exactly the top-level commands it is listed under, and no command is in two", async () => {
  const seen = new Set<string>();
  for (const group of COMMAND_GROUPS) {
    const program = new Command();
    (await group.load())(program, env);
    assert.deepEqual(program.commands.map((c) => c.name()), group.names);
    for (const name of group.names) {
      assert.ok(!seen.has(name), `${name} is in two groups`);
      seen.add(name);
    }
  }
});

test("a command line loads its command's group alone; help, no command or an unknown one loads them all", () => {
  assert.deepEqual(groupsFor(["push", "dir", "host/repo:tag"]).map((g) => g.names), [["push", "pull"]]);
  assert.deepEqual(groupsFor(["upgrade", "--help"]).map((g) => g.names), [["image", "upgrade"]]);
  for (const line of [[], ["--help"], ["help", "push"], ["--version"], ["frobnicate"]]) assert.equal(groupsFor(line), COMMAND_GROUPS, line.join(" "));
});
