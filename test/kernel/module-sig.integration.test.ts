import { join } from "node:path";
import { before, test } from "node:test";
import { assertModuleEnforcement } from "../helpers/boot-modules.ts";
import { builtImage } from "../helpers/build.ts";
import { PROJECT_ROOT } from "../helpers/tmp.ts";

// Runtime enforcement: the built kernel, booted, must load a module signed at
// build time and refuse the same module unsigned or signed by another key.
// The image is the built minimal image with the two bad copies added.
const OUT = join(PROJECT_ROOT, "_out", "minimal");
// the minimal image: built when this file runs alone
before(() => builtImage("minimal"), { timeout: 30 * 60_000 });

test("the kernel loads modules signed at build (in-tree and out-of-tree) and refuses an unsigned and a foreign-signed one", async () => {
  await assertModuleEnforcement(OUT);
});
