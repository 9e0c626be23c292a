import assert from "node:assert/strict";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { publish, stagingDir, type OutputSet } from "../../src/pipeline/publish.ts";
import { fileIdentities } from "../helpers/identities.ts";
import { tempDir } from "../helpers/tmp.ts";

async function outputs(dir: string, uki = "uki", report = "report of this build"): Promise<OutputSet> {
  const from = join(dir, "cache-uki.efi");
  await writeFile(from, uki);
  return {
    copies: [{ name: "uki.efi", from }],
    contents: [
      { name: "installer/index.json", data: Buffer.from("{}") },
      { name: "report.html", data: Buffer.from(report), unlisted: true },
    ],
    manifest: { profile: "p" },
  };
}

test("publishing the same outputs again writes nothing: same files, same inodes and times, the report of the build that made them", async () => {
  const dir = await tempDir();
  const out = join(dir, "_out", "p");
  const first = await publish(out, await outputs(dir));
  const before = await fileIdentities(out);
  assert.deepEqual(Object.keys(before).map((p) => p.slice(out.length + 1)).sort(), ["installer/index.json", "manifest.json", "report.html", "uki.efi"]);
  await new Promise((r) => setTimeout(r, 20));
  const second = await publish(out, await outputs(dir, "uki", "a report with other timings"));
  assert.deepEqual(await fileIdentities(out), before);
  assert.deepEqual(second, first);
  assert.equal(await readFile(join(out, "report.html"), "utf8"), "report of this build");
  assert.deepEqual(await readdir(join(dir, "_out")), ["p"], "no staging directory left");
});

test("outputs that changed, a file altered or added in the output directory: published again, whole", async () => {
  const dir = await tempDir();
  const out = join(dir, "_out", "p");
  await publish(out, await outputs(dir));
  await publish(out, await outputs(dir, "new uki"));
  assert.equal(await readFile(join(out, "uki.efi"), "utf8"), "new uki");
  assert.match(await readFile(join(out, "manifest.json"), "utf8"), /"size": 7/);

  // a later tick of the file system's clock (ext4's is coarse: a few ms)
  await new Promise((r) => setTimeout(r, 20));
  await writeFile(join(out, "uki.efi"), "bad uki");
  await publish(out, await outputs(dir, "new uki"));
  assert.equal(await readFile(join(out, "uki.efi"), "utf8"), "new uki", "an altered file of the same size is seen by its ctime");

  await mkdir(join(out, "installer", "blobs"));
  await writeFile(join(out, "installer", "blobs", "stray"), "x");
  await publish(out, await outputs(dir, "new uki"));
  assert.deepEqual(await readdir(join(out, "installer")), ["index.json"], "what the build does not make is gone");
});

test("what killed builds left beside the output directories is swept by the next publish; a live build's is not", async () => {
  const dir = await tempDir();
  const out = join(dir, "_out", "p");
  await mkdir(join(dir, "_out"), { recursive: true });
  // named for a process that is gone (pid numbers stop well below this one)
  const abandoned = join(dir, "_out", ".p.publishing.999999999.deadbeef");
  await mkdir(abandoned);
  const live = await stagingDir(join(dir, "_out", "q"), "disk");
  await publish(out, await outputs(dir));
  assert.deepEqual((await readdir(join(dir, "_out"))).sort(), [live.slice(join(dir, "_out").length + 1), "p"].sort());
});
