import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// bronze's argp (pkgs/argp), built for the host from the same sources, against checks of what crun relies on
test("argp parses long, short, clustered and optional-argument options and aliases, stops at the first argument its parser leaves, and refuses what it does not know", async () => {
  const dir = join(PROJECT_ROOT, "pkgs", "argp");
  const program = join(await tempDir(), "argp-test");
  await execa("gcc", ["-Wall", "-Wextra", "-Werror", "-I", join(dir, "src"), "-o", program, join(dir, "test", "argp-test.c"), join(dir, "src", "argp.c")]);
  const run = await execa(program, [], { reject: false });
  assert.equal(run.exitCode, 0, run.stdout);
  assert.match(run.stdout, /^8 checks passed$/m);
});
