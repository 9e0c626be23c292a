import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { findPrivateKeys, keyNeedles } from "../../src/kernel/key-scan.ts";
import { KEY_FILE } from "../../src/kernel/signing-key.ts";
import { cacheWithProjectPackages, profileWithExtraConfig, startBuild } from "../helpers/build.ts";
import { findKeyCopies, leftoverKeyDirs } from "../helpers/keys.ts";
import { PROJECT_ROOT } from "../helpers/tmp.ts";

// The module-signing key's lifecycle through a successful, a failed and an
// interrupted kernel build. Each test starts a real kernel build, watches the
// key appear on tmpfs and keeps its bytes (in memory only) so that afterwards
// every file can be searched for them as PEM and as DER.
const CACHE = join(PROJECT_ROOT, ".cache", "bronze");
const WORK = join(PROJECT_ROOT, "_work");

interface CapturedKey {
  dir: string;
  needles: Buffer[];
  /** when its directory was last changed: before any byte of the key existed */
  since: number;
}

/** Waits for a build's key to appear and keeps its bytes. */
async function captureKey(timeoutMs = 300_000): Promise<CapturedKey> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const dir of await leftoverKeyDirs()) {
      const pem = await readFile(join(dir, KEY_FILE), "utf8").catch(() => "");
      if (/PRIVATE KEY-----[\s\S]*END CERTIFICATE-----/.test(pem)) return { dir, needles: keyNeedles(pem), since: (await stat(dir)).mtimeMs - 1000 };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no ephemeral key appeared");
}

async function assertKeyGone(key: CapturedKey, dirs: readonly string[]): Promise<void> {
  assert.deepEqual(await leftoverKeyDirs(), [], "no key directory left on tmpfs");
  assert.deepEqual(await findKeyCopies([...dirs, CACHE], key.needles, key.since), [], "no copy in the cache (its compiled kernel trees too) or the outputs");
  // the kernel source ships example PEM keys of its own: in the work tree, look for this key's bytes
  assert.deepEqual(await findPrivateKeys([WORK], { needles: key.needles, pemHeaders: false }), [], "no copy in the work tree");
  // other programs keep example PEM keys in the temp directory: look for this key's bytes only
  assert.deepEqual(await findPrivateKeys([tmpdir()], { needles: key.needles, pemHeaders: false, exclude: [PROJECT_ROOT] }), [], "no copy in the temp directory");
}

test("a successful kernel build signs its modules, then leaves no copy of its key anywhere", async () => {
  // a new cache with the project's packages only; the compiled trees are this machine's (the minimal
  // kernel's, recompiled for one more option)
  const cache = await cacheWithProjectPackages();
  const build = startBuild(await profileWithExtraConfig("keyok", "CONFIG_CRC_ITU_T=m\n"), cache, ["--compile-cache", join(CACHE, "compile")]);
  const key = await captureKey();
  const result = await build;
  assert.equal(result.exitCode, 0, String(result.all));
  assert.match(String(result.all), /kernel \d+\.\d+\.\d+-bronze: 3 module\(s\)/);
  await assertKeyGone(key, [cache, join(PROJECT_ROOT, "_out", "keyok")]);
});

test("a kernel build that fails destroys its key and names the offending fragment line", async () => {
  const build = startBuild(await profileWithExtraConfig("keyfail", "# an option no kernel has\nCONFIG_BRONZE_NO_SUCH_OPTION=y\n"));
  const key = await captureKey();
  const result = await build;
  assert.equal(result.exitCode, 2, String(result.all));
  assert.match(String(result.all), /extra\.config:2: CONFIG_BRONZE_NO_SUCH_OPTION=y but the resolved config has it unset/);
  await assertKeyGone(key, []);
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  test(`a kernel build interrupted by ${signal} destroys its key before exiting`, async () => {
    const build = startBuild(await profileWithExtraConfig("keyint", "CONFIG_CRC_ITU_T=m\nCONFIG_CRC7=m\n"));
    const key = await captureKey();
    build.kill(signal);
    const result = await build;
    assert.notEqual(result.exitCode, 0);
    await assertKeyGone(key, []);
  });
}

test("a key left behind by a killed build (SIGKILL) is destroyed by the next run", async () => {
  const build = startBuild(await profileWithExtraConfig("keykill", "CONFIG_CRC_ITU_T=m\nCONFIG_CRC7=m\n"));
  const key = await captureKey();
  build.kill("SIGKILL");
  await build;
  assert.deepEqual(await leftoverKeyDirs(), [key.dir], "SIGKILL cannot be caught: the key is still there");
  // any later build removes it first, even one that needs no kernel build at all (the minimal kernel is cached)
  const next = await startBuild(await profileWithExtraConfig("keynext", ""));
  assert.equal(next.exitCode, 0, String(next.all));
  await assertKeyGone(key, []);
});
