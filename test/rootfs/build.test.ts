import assert from "node:assert/strict";
import { mkdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { makeSquashfs } from "../../src/rootfs/build.ts";
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
