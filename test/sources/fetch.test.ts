import assert from "node:assert/strict";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { sha256 } from "../../src/core/hash.ts";
import { loadPackage } from "../../src/pkgs/schema.ts";
import { ChecksumMismatch, fetchSource } from "../../src/sources/fetch.ts";
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
