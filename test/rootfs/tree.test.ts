import assert from "node:assert/strict";
import { mkdir, readlink, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { mergeInto } from "../../src/rootfs/tree.ts";
import { tempDir } from "../helpers/tmp.ts";

async function packageTree(dir: string, files: Record<string, string>): Promise<string> {
  for (const [path, data] of Object.entries(files)) {
    await mkdir(join(dir, path, ".."), { recursive: true });
    await writeFile(join(dir, path), data);
  }
  return dir;
}

test("a package's files go into the root as links to the cache's (merged /usr, no development files), symlinks as they are", async () => {
  const dir = await tempDir();
  const pkg = await packageTree(join(dir, "pkg"), { "bin/tool": "tool", "usr/include/x.h": "h", "lib/libx.a": "a", "lib/libx.so.1": "so" });
  await symlink("libx.so.1", join(pkg, "lib", "libx.so"));
  const root = join(dir, "root");
  const owners = new Map<string, string>();
  await mergeInto(root, pkg, "x", owners);
  assert.equal((await stat(join(root, "usr/bin/tool"))).ino, (await stat(join(pkg, "bin/tool"))).ino, "the same file: nothing copied");
  assert.equal(await readlink(join(root, "usr/lib/libx.so")), "libx.so.1");
  await assert.rejects(stat(join(root, "usr/include/x.h")));
  await assert.rejects(stat(join(root, "usr/lib/libx.a")));
  assert.deepEqual([...owners.keys()].sort(), ["usr/bin/tool", "usr/lib/libx.so", "usr/lib/libx.so.1"]);
});

test("a file two packages install is an error naming both", async () => {
  const dir = await tempDir();
  const root = join(dir, "root");
  const owners = new Map<string, string>();
  await mergeInto(root, await packageTree(join(dir, "a"), { "usr/bin/sh": "a" }), "a", owners);
  await assert.rejects(mergeInto(root, await packageTree(join(dir, "b"), { "bin/sh": "b" }), "b", owners), /\/usr\/bin\/sh is installed by both package 'a' and package 'b'/);
});
