import assert from "node:assert/strict";
import { appendFile, chmod, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { Store, type RemoteStore } from "../../src/core/store.ts";
import { tempDir } from "../helpers/tmp.ts";

async function storeWithEntry(): Promise<{ store: Store; warnings: string[]; dir: string }> {
  const store = new Store(await tempDir());
  const warnings: string[] = [];
  store.warn = (line) => warnings.push(line);
  const entry = await store.put("k1", "package demo", { a: 1 }, async (out) => {
    await mkdir(join(out, "usr/bin"), { recursive: true });
    await writeFile(join(out, "usr/bin/demo"), "#!/bin/sh\necho demo\n", { mode: 0o755 });
    await writeFile(join(out, "data"), Buffer.alloc(5000, 7));
    return { fact: "x" };
  });
  return { store, warnings, dir: entry.dir };
}

test("an entry records the digest of its files and is served while they match it", async () => {
  const { store, warnings, dir } = await storeWithEntry();
  const found = await store.lookup("k1");
  assert.ok(found);
  assert.equal(found.record.content?.files, 2);
  assert.match(found.record.content?.digest ?? "", /^[0-9a-f]{64}$/);
  assert.equal(found.dir, dir);
  assert.deepEqual(warnings, []);
  assert.deepEqual(await readdir(join(store.root, "tmp")), [], "nothing of the write stays in tmp/");
});

for (const [what, damage] of [
  ["a flipped byte", async (dir: string) => {
    const data = await readFile(join(dir, "data"));
    data.writeUInt8(data.readUInt8(1234) ^ 0x01, 1234);
    await writeFile(join(dir, "data"), data);
  }],
  ["a lost executable bit", async (dir: string) => chmod(join(dir, "usr/bin/demo"), 0o644)],
  ["a file added", async (dir: string) => writeFile(join(dir, "extra"), "x")],
  ["a file removed", async (dir: string) => rm(join(dir, "data"))],
  ["a file grown", async (dir: string) => appendFile(join(dir, "data"), "x")],
] as const) {
  test(`${what} in an entry is found at lookup: the entry is discarded with a warning naming it, never served`, async () => {
    const { store, warnings, dir } = await storeWithEntry();
    await damage(dir);
    assert.equal(await store.lookup("k1"), undefined);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^cache entry k1 \(package demo\) discarded: .+; the step runs again$/);
    await assert.rejects(stat(join(store.root, "store", "k1")), "the damaged entry is gone");
  });
}

test("an entry that records no digest (an older bronze's) is not served", async () => {
  const { store, warnings } = await storeWithEntry();
  const recordPath = join(store.root, "store", "k1", "record.json");
  const record = JSON.parse(await readFile(recordPath, "utf8")) as Record<string, unknown>;
  delete record.content;
  await writeFile(recordPath, JSON.stringify(record));
  assert.equal(await store.lookup("k1"), undefined);
  assert.match(warnings[0]!, /records no digest/);
});

test("verifyAll hashes every entry and discards the corrupt ones", async () => {
  const { store, dir } = await storeWithEntry();
  await store.put("k2", "uki", {}, async (out) => {
    await writeFile(join(out, "uki.efi"), "MZ");
    return {};
  });
  await writeFile(join(dir, "data"), Buffer.alloc(5000, 8));
  assert.deepEqual(await store.verifyAll(), { ok: 1, discarded: ["k1"] });
  assert.ok(await store.lookup("k2"));
});

test("a shared cache entry whose files do not match its record is a miss, never kept", async () => {
  const source = await storeWithEntry();
  const store = new Store(await tempDir());
  const warnings: string[] = [];
  store.warn = (line) => warnings.push(line);
  const remote: RemoteStore = {
    fetch: async (_key, into) => {
      await mkdir(into, { recursive: true });
      await writeFile(join(into, "record.json"), await readFile(join(source.store.root, "store", "k1", "record.json")));
      await mkdir(join(into, "out"));
      await writeFile(join(into, "out", "data"), "poisoned");
      return true;
    },
    publish: async () => undefined,
  };
  store.remote = remote;
  assert.equal(await store.lookup("k1"), undefined);
  assert.match(warnings[0]!, /^shared cache entry k1 \(package demo\) discarded/);
  await assert.rejects(stat(join(store.root, "store", "k1")));
});

test("a write that dies before its commit leaves nothing served; its scratch is removed by a later write, what other writers have under tmp/ is not", async () => {
  const store = new Store(await tempDir());
  await assert.rejects(
    store.put("k3", "rootfs", {}, async (out) => {
      await writeFile(join(out, "half"), "written");
      throw new Error("killed");
    }),
  );
  assert.equal(await store.lookup("k3"), undefined);
  const abandoned = join(store.root, "tmp", "k4.999999999.deadbeef");
  await mkdir(join(abandoned, "out"), { recursive: true });
  // a source download of this process or another, in the same tmp/: not the store's to remove
  await mkdir(join(store.root, "tmp", "fetch-Ab12Cd"));
  // another write of this store, just begun: it has no files yet, and it is still its writer's
  const live = join(store.root, "tmp", `k6.${process.ppid}.0badc0de`);
  await mkdir(live);
  await store.put("k5", "uki", {}, async (out) => writeFile(join(out, "f"), "x").then(() => ({})));
  assert.deepEqual((await readdir(join(store.root, "tmp"))).sort(), ["fetch-Ab12Cd", `k6.${process.ppid}.0badc0de`]);
});

test("an entry is hashed again only when its files changed since they were last found whole; bronze cache verify hashes every time", async () => {
  const { store, warnings, dir } = await storeWithEntry();
  // ctimes are trusted once they are older than the file system clock's coarseness allows (a second)
  await new Promise((r) => setTimeout(r, 1100));
  assert.ok(await store.lookup("k1"));
  assert.equal(store.digestChecks, 1, "the first lookup hashes the files");
  assert.ok(await store.lookup("k1"));
  assert.equal(store.digestChecks, 1, "unchanged since: not hashed again");
  await store.verifyAll();
  assert.equal(store.digestChecks, 2, "verify hashes regardless");
  const data = await readFile(join(dir, "data"));
  data.writeUInt8(data.readUInt8(99) ^ 0x01, 99);
  await writeFile(join(dir, "data"), data);
  assert.equal(await store.lookup("k1"), undefined, "a write since the check: hashed, found corrupt");
  assert.equal(store.digestChecks, 3);
  assert.match(warnings[0]!, /^cache entry k1 \(package demo\) discarded: corrupt/);
});

test("a store exists once a build has put an entry in it, not before", async () => {
  assert.equal(await new Store(await tempDir()).exists(), false);
  assert.equal(await new Store(join(await tempDir(), "no-such-dir")).exists(), false);
  const { store } = await storeWithEntry();
  assert.equal(await store.exists(), true);
});
