import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { sha256 } from "../../src/core/hash.ts";
import { loadPackage } from "../../src/pkgs/schema.ts";
import { ChecksumMismatch, fetchSource, pinnedDigest, sourceName } from "../../src/sources/fetch.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

test("a host file whose digest differs from its pin is refused, printing both digests", async () => {
  const dir = await tempDir();
  const file = join(dir, "source.tar");
  await writeFile(file, "tampered");
  const pinned = sha256("original");
  await assert.rejects(
    fetchSource({ kind: "host-file", path: file, sha256: pinned }, { cacheDir: dir, definedIn: "kernel/source.yaml", logFile: join(dir, "log") }),
    (e: unknown) => {
      assert.ok(e instanceof ChecksumMismatch);
      assert.match(e.message, new RegExp(`expected sha256 ${pinned} \\(pinned in kernel/source\\.yaml\\)`));
      assert.match(e.message, new RegExp(`actual   sha256 ${sha256("tampered")}`));
      return true;
    },
  );
  const verified = await fetchSource({ kind: "host-file", path: file, sha256: sha256("tampered") }, { cacheDir: dir, definedIn: "x", logFile: join(dir, "log") });
  assert.equal(verified.digest, sha256("tampered"));
});

test("a Debian source package with a wrong pin is fetched, refused, and nothing is cached", async () => {
  const cacheDir = await tempDir();
  const musl = await loadPackage(join(PROJECT_ROOT, "pkgs/musl/pkg.yaml"));
  const pin = musl.sources[0];
  assert.ok(pin && pin.kind === "debian");
  const wrong = { ...pin, sha256: "0".repeat(64) };
  await assert.rejects(
    fetchSource(wrong, { cacheDir, definedIn: musl.file, logFile: join(cacheDir, "fetch.log") }),
    (e: unknown) => e instanceof ChecksumMismatch && e.message.includes(`actual   sha256 ${pin.sha256}`) && /Nothing was cached/.test(e.message),
  );
  const left = await readdir(cacheDir, { recursive: true });
  assert.deepEqual(left.filter((p) => p.startsWith("sources") || (p.startsWith("tmp/") && p !== "tmp")), []);

  const good = await fetchSource(pin, { cacheDir, definedIn: musl.file, logFile: join(cacheDir, "fetch.log") });
  assert.equal(good.path, join(cacheDir, "sources", pin.sha256, pin.file));
});

test("a Debian source package's pins share one download: its other files are kept by their own digests", async () => {
  const cacheDir = await tempDir();
  const yajl = await loadPackage(join(PROJECT_ROOT, "pkgs/yajl/pkg.yaml"));
  const orig = yajl.sources[0];
  assert.ok(orig && orig.kind === "debian" && orig.patches);
  const series = { kind: "debian" as const, package: orig.package, version: orig.version, file: orig.patches.file, sha256: orig.patches.sha256 };
  const logFile = join(cacheDir, "fetch.log");
  const [tarball, patches] = await Promise.all([fetchSource(orig, { cacheDir, definedIn: yajl.file, logFile }), fetchSource(series, { cacheDir, definedIn: yajl.file, logFile })]);
  assert.equal(tarball.path, join(cacheDir, "sources", orig.sha256, orig.file));
  assert.equal(patches.path, join(cacheDir, "sources", series.sha256, series.file));
  assert.equal(sha256(await readFile(patches.path)), series.sha256);
  const log = await readFile(logFile, "utf8");
  assert.equal(log.split("\n").filter((line) => line.startsWith("+ apt-get source")).length, 1, log);
  // each kept file sits under its own digest
  for (const dir of await readdir(join(cacheDir, "sources"))) {
    for (const file of await readdir(join(cacheDir, "sources", dir))) assert.equal(sha256(await readFile(join(cacheDir, "sources", dir, file))), dir, file);
  }
});

test("a pin's digest is known without a fetch: the pinned sha256, or a local tree's digest; its name is its file's", async () => {
  const yajl = await loadPackage(join(PROJECT_ROOT, "pkgs/yajl/pkg.yaml"));
  const orig = yajl.sources[0];
  assert.ok(orig && orig.kind === "debian");
  assert.equal(await pinnedDigest(orig), orig.sha256);
  assert.equal(sourceName(orig), "yajl_2.1.0.orig.tar.gz");
  const dir = await tempDir();
  await writeFile(join(dir, "a.c"), "int main(void) { return 0; }\n");
  const local = { kind: "local" as const, path: dir };
  assert.equal(await pinnedDigest(local), (await fetchSource(local, { cacheDir: dir, definedIn: "x", logFile: join(dir, "log") })).digest);
  assert.equal(sourceName(local), "local");
  assert.equal(sourceName({ kind: "host-file", path: "/usr/src/linux-source-6.12.tar.xz", sha256: "0".repeat(64) }), "linux-source-6.12.tar.xz");
});
