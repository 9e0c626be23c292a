import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import { bootLoadingModules, unpackImage } from "../helpers/boot-modules.ts";
import { makeSigningKey, signModule, stripSignature } from "../helpers/modsign.ts";
import { builtImage } from "../helpers/build.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// Runtime enforcement: the built kernel, booted, must load a module signed at
// build time and refuse the same module unsigned or signed by another key.
// The image is the built minimal image with the two bad copies added.
const OUT = join(PROJECT_ROOT, "_out", "minimal");
// the minimal image: built when this file runs alone
before(() => builtImage("minimal"), { timeout: 30 * 60_000 });

test("the kernel loads modules signed at build (in-tree and out-of-tree) and refuses an unsigned and a foreign-signed one", async () => {
  const work = await tempDir();
  const image = await unpackImage(OUT, work);
  const release = image.manifest.kernel.release;
  const signedPath = `/usr/lib/modules/${release}/kernel/lib/crc-ccitt.ko`;
  const signed = await readFile(join(image.root, signedPath));
  const unsigned = stripSignature(signed);
  assert.ok(unsigned.length < signed.length, "the shipped module carries a signature");
  const foreignKey = await makeSigningKey(work, "foreign");

  const outOfTree = `/usr/lib/modules/${release}/extra/bronze_hello.ko`;
  const { report, result } = await bootLoadingModules(
    image,
    work,
    [
      { path: "usr/lib/bronze-test/unsigned.ko", data: unsigned },
      { path: "usr/lib/bronze-test/foreign.ko", data: await signModule(unsigned, foreignKey, work) },
    ],
    ["/usr/lib/bronze-test/unsigned.ko", "/usr/lib/bronze-test/foreign.ko", signedPath, outOfTree],
  );
  // with enforcement, the kernel answers EKEYREJECTED to both, and logs why
  assert.deepEqual(report, [
    "bronze: module /usr/lib/bronze-test/unsigned.ko refused: Key was rejected by service",
    "bronze: module /usr/lib/bronze-test/foreign.ko refused: Key was rejected by service",
    `bronze: module ${signedPath} loaded`,
    `bronze: module ${outOfTree} loaded`,
  ]);
  assert.ok(result.console.some((l) => l.includes("bronze_hello: loaded")), "the out-of-tree module ran its init");
  const reasons = result.console.filter((l) => /Loading of .* is rejected/.test(l));
  assert.deepEqual(reasons, ["Loading of unsigned module is rejected", "Loading of module with unavailable key is rejected"]);
});
