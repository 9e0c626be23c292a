import assert from "node:assert/strict";
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { stampBuild, unchangedSince, type BuildReads } from "../../src/pipeline/stamp.ts";
import { SETTLED_MS } from "../../src/core/fingerprint.ts";
import { loadProfile } from "../../src/profile/profile.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// Stamps live in $BRONZE_CACHE/stamps; the environment is part of what a stamp holds to.
process.env.BRONZE_CACHE = await tempDir("bronze-stamps-");

/** A project as a build reads it: profile, recipes, kernel inputs, a commit; a store entry and outputs. */
async function project(): Promise<{ reads: BuildReads; root: string; entry: string; out: string }> {
  const root = await tempDir("bronze-stamp-project-");
  const files: Record<string, string> = {
    "pkgs/musl/pkg.yaml": "name: musl\n",
    "pkgs/init/src/init.c": "int main(void) { return 0; }\n",
    "kernel/config/common.config": "CONFIG_X=y\n",
    "package.json": "{}\n",
    ".git/HEAD": "ref: refs/heads/main\n",
    ".git/refs/heads/main": "0123\n",
    "cache/store/k1/record.json": "{}\n",
    "cache/store/k1/out/file": "entry\n",
    "_out/p/uki.efi": "uki\n",
  };
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, path, ".."), { recursive: true });
    await writeFile(join(root, path), text);
  }
  await copyFile(join(PROJECT_ROOT, "profiles", "minimal.yaml"), join(root, "p.yaml"));
  const profile = await loadProfile(join(root, "p.yaml"));
  const entry = join(root, "cache/store/k1");
  const out = join(root, "_out/p");
  return { reads: { projectRoot: root, profile, entries: [entry], outDir: out, cacheDir: join(root, "cache") }, root, entry, out };
}

const SUMMARY = ["kernel 6.1: 3 module(s)", "  _out/p/uki.efi   4 B"];

test("a build stamped once everything it read was settled is answered by its stamp until any of it changes", async () => {
  const changes: Record<string, (p: Awaited<ReturnType<typeof project>>) => Promise<unknown>> = {
    "nothing": async () => undefined,
    "a recipe rewritten with the same bytes": (p) => writeFile(join(p.root, "pkgs/musl/pkg.yaml"), "name: musl\n"),
    "a file added below pkgs/": (p) => writeFile(join(p.root, "pkgs/init/src/extra.h"), ""),
    "the profile edited": (p) => writeFile(join(p.root, "p.yaml"), "# edited\n", { flag: "a" }),
    "a new commit": (p) => writeFile(join(p.root, ".git/refs/heads/main"), "4567\n"),
    "packed refs appearing": (p) => writeFile(join(p.root, ".git/packed-refs"), ""),
    "a published file touched": (p) => writeFile(join(p.out, "uki.efi"), "uki\n"),
    "a published file removed": (p) => rm(join(p.out, "uki.efi")),
    "a byte of a cache entry flipped": (p) => writeFile(join(p.entry, "out/file"), "entrz\n"),
    "a cache entry gone": (p) => rm(p.entry, { recursive: true }),
    "an entry's digest checked again": (p) => writeFile(join(p.entry, "checked"), "digest\n"),
  };
  const projects = await Promise.all(Object.keys(changes).map(async (name) => ({ name, p: await project() })));
  await sleep(SETTLED_MS + 100);
  const argvOf = (name: string) => ["build", "--profile", name];
  for (const { name, p } of projects) assert.equal(await stampBuild(argvOf(name), Date.now(), p.reads, SUMMARY), true, name);
  for (const { name, p } of projects) await changes[name]!(p);
  for (const { name, p } of projects) {
    const stamp = await unchangedSince(p.root, argvOf(name));
    if (name === "nothing" || name === "an entry's digest checked again") assert.deepEqual(stamp?.summary, SUMMARY, name);
    else assert.equal(stamp, undefined, `${name}: the stamp no longer answers`);
  }
  const { p } = projects[0]!;
  assert.equal(await unchangedSince(p.root, ["build", "--profile", "other"]), undefined, "another command has no stamp");
  process.env.BRONZE_TEST_SETTING = "1";
  try {
    assert.equal(await unchangedSince(p.root, argvOf("nothing")), undefined, "a changed environment");
  } finally {
    delete process.env.BRONZE_TEST_SETTING;
  }
  assert.ok(await unchangedSince(p.root, argvOf("nothing")), "the same environment again");
});

test("a build that wrote what it depends on, or read a file changed just before it, leaves no stamp and removes the old one", async () => {
  const p = await project();
  await sleep(SETTLED_MS + 100);
  const argv = ["build", "--profile", "fresh"];
  assert.equal(await stampBuild(argv, Date.now(), p.reads, SUMMARY), true);
  await writeFile(join(p.out, "uki.efi"), "new uki\n");
  assert.equal(await stampBuild(argv, Date.now(), p.reads, SUMMARY), false, "an output written by the build is not settled");
  assert.equal(await unchangedSince(p.root, argv), undefined, "the earlier stamp is gone");
  const started = Date.now();
  await writeFile(join(p.root, "kernel/config/common.config"), "CONFIG_X=m\n");
  assert.equal(await stampBuild(argv, started + 500, p.reads, SUMMARY), false, "an input changed within SETTLED_MS of the start");
});

test("a project whose commit cannot be told by stat (no .git directory) is never stamped", async () => {
  const p = await project();
  await rm(join(p.root, ".git"), { recursive: true });
  await writeFile(join(p.root, ".git"), "gitdir: /elsewhere\n");
  await sleep(SETTLED_MS + 100);
  const epoch = process.env.SOURCE_DATE_EPOCH;
  delete process.env.SOURCE_DATE_EPOCH;
  try {
    assert.equal(await stampBuild(["build", "--profile", "worktree"], Date.now(), p.reads, SUMMARY), false);
  } finally {
    if (epoch !== undefined) process.env.SOURCE_DATE_EPOCH = epoch;
  }
});
