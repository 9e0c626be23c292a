import assert from "node:assert/strict";
import { lchown, mkdir, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { makeSquashfs, ownerDefinitions } from "../../src/rootfs/build.ts";
import { tempDir } from "../helpers/tmp.ts";

test("every timestamp in the squashfs is the epoch, whatever the files' own (a cached package built under another commit)", async () => {
  const dir = await tempDir();
  const tree = join(dir, "tree");
  await mkdir(join(tree, "usr", "bin"), { recursive: true });
  await writeFile(join(tree, "usr", "bin", "tool"), "#!/bin/sh\n");
  await utimes(join(tree, "usr", "bin", "tool"), 1_000_000_000, 1_000_000_000);
  const epoch = 1_796_156_853;
  const images = [join(dir, "a.sqsh"), join(dir, "b.sqsh")];
  // with SOURCE_DATE_EPOCH set, as bronze repro and CI set it
  process.env.SOURCE_DATE_EPOCH = String(epoch - 1000);
  await makeSquashfs(tree, images[0] as string, epoch, join(dir, "log"));
  // the same tree with other file times: the same image
  await utimes(join(tree, "usr", "bin", "tool"), 1_500_000_000, 1_500_000_000);
  await makeSquashfs(tree, images[1] as string, epoch, join(dir, "log"));
  delete process.env.SOURCE_DATE_EPOCH;
  const [a, b] = await Promise.all(images.map((i) => execa("sha256sum", [i]).then((r) => r.stdout.split(" ")[0])));
  assert.equal(a, b);
  const listing = (await execa("unsquashfs", ["-lls", images[0] as string], { env: { TZ: "UTC" } })).stdout;
  const dates = [...listing.matchAll(/ (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) /g)].map((m) => m[1]);
  assert.ok(dates.length >= 3, listing);
  assert.deepEqual(new Set(dates), new Set([new Date(epoch * 1000).toISOString().slice(0, 16).replace("T", " ")]));
  assert.match((await execa("unsquashfs", ["-s", images[0] as string], { env: { TZ: "UTC" } })).stdout, /Creation or last append time Tue Dec {2}1 20:27:33 2026/);
});

test("with owner definitions, each entry of the squashfs has the owner and mode they give, whoever owns the tree; without, all are root's", async () => {
  const dir = await tempDir();
  const tree = join(dir, "tree");
  await mkdir(join(tree, "a dir"), { recursive: true });
  await writeFile(join(tree, "a dir", 'st"ate'), "private\n");
  await symlink('st"ate', join(tree, "a dir", "link"));
  await lchown(join(tree, "a dir"), 4321, 4321);
  const entries = [
    { path: "a dir", type: "dir", mode: 0o750, uid: 1500, gid: 1600 },
    { path: "a dir/link", type: "symlink", mode: 0o777, uid: 0, gid: 0 },
    { path: 'a dir/st"ate', type: "file", mode: 0o600, uid: 1500, gid: 1600 },
  ];
  const owners = join(dir, "owners");
  await writeFile(owners, ownerDefinitions(entries));
  await makeSquashfs(tree, join(dir, "owned.sqsh"), 1_796_156_853, join(dir, "log"), owners);
  await makeSquashfs(tree, join(dir, "root.sqsh"), 1_796_156_853, join(dir, "log"));
  const list = async (image: string) => (await execa("unsquashfs", ["-lln", join(dir, image)])).stdout.split("\n").map((l) => l.split(/\s+/).slice(0, 2).join(" ") + " " + l.replace(/^.* squashfs-root/, ""));
  assert.deepEqual(await list("owned.sqsh"), ["drwxr-xr-x 0/0 ", "drwxr-x--- 1500/1600 /a dir", "lrwxrwxrwx 0/0 /a dir/link -> st\"ate", "-rw------- 1500/1600 /a dir/st\"ate"]);
  assert.deepEqual((await list("root.sqsh")).map((l) => l.split(" ")[1]), ["0/0", "0/0", "0/0", "0/0"]);
});
