import assert from "node:assert/strict";
import { appendFile, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { assertSourceUntouched, linkSource } from "../../src/kernel/compile.ts";
import { tempDir } from "../helpers/tmp.ts";

/** An unpacked source (sources/S/tree/linux/...) and a fresh compile tree beside it, as the compile cache lays them out. */
async function linkedTree(): Promise<{ source: string; tree: string; linkedAt: number }> {
  const root = await tempDir();
  const source = join(root, "sources", "s1", "tree");
  const tree = join(root, "tmp", "k1 it's", "tree");
  await mkdir(join(source, "linux", "scripts"), { recursive: true });
  await mkdir(tree, { recursive: true });
  await writeFile(join(source, "linux", "Makefile"), "all:\n");
  await writeFile(join(source, "linux", "scripts", "gen.sh"), "#!/bin/sh\n", { mode: 0o755 });
  const linkedAt = await linkSource(source, tree, root, join(root, "link.log"));
  return { source, tree, linkedAt };
}

test("a fresh tree's sources are hard links to the unpacked source's files, modes kept", async () => {
  const { source, tree } = await linkedTree();
  for (const rel of ["linux/Makefile", "linux/scripts/gen.sh"]) {
    const [ours, theirs] = await Promise.all([stat(join(tree, rel)), stat(join(source, rel))]);
    assert.equal(ours.ino, theirs.ino, rel);
    assert.equal(ours.nlink, 2, rel);
    assert.equal(ours.mode, theirs.mode, rel);
  }
});

test("new files and replaced sources pass the check; the unpacked source is kept", async () => {
  const { source, tree, linkedAt } = await linkedTree();
  await writeFile(join(tree, "linux", "built.o"), "object");
  await rm(join(tree, "linux", "scripts", "gen.sh"));
  await writeFile(join(tree, "linux", "scripts", "gen.sh"), "#!/bin/sh\necho derived\n");
  let discarded = false;
  await assertSourceUntouched(tree, linkedAt, async () => {
    discarded = true;
  });
  assert.equal(discarded, false);
  assert.equal(await readFile(join(source, "linux", "scripts", "gen.sh"), "utf8"), "#!/bin/sh\n");
});

test("a compile that wrote into a linked source is refused, naming the file, and the source is discarded", async () => {
  const { tree, linkedAt } = await linkedTree();
  // later than the links, on the kernel's coarse clock
  await new Promise((resolve) => setTimeout(resolve, 20));
  await appendFile(join(tree, "linux", "Makefile"), "# changed in place\n");
  let discarded = false;
  await assert.rejects(
    assertSourceUntouched(tree, linkedAt, async () => {
      discarded = true;
    }),
    /wrote into 1 source file\(s\) it shares with the unpacked kernel source \(linux\/Makefile\)/,
  );
  assert.equal(discarded, true);
});

test("another build's tree linking to the same source, or removing its links, is no write into it", async () => {
  const { source, tree, linkedAt } = await linkedTree();
  await new Promise((resolve) => setTimeout(resolve, 20));
  // a second build on the machine links a tree of its own, then removes it: every shared inode's ctime changes
  const other = join(tree, "..", "..", "k2");
  await mkdir(other, { recursive: true });
  await linkSource(source, other, join(tree, "..", "..", ".."), join(other, "..", "link2.log"));
  await rm(other, { recursive: true });
  let discarded = false;
  await assertSourceUntouched(tree, linkedAt, async () => {
    discarded = true;
  });
  assert.equal(discarded, false);
});
