import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { sha256 } from "../../src/core/hash.ts";
import { findPrivateKeys, keyNeedles } from "../../src/kernel/key-scan.ts";
import { signerCertificate, verifyModule, verifyModuleTree } from "../../src/kernel/module-sig.ts";
import { profileWithExtraConfig, startBuild } from "../helpers/build.ts";
import { findKeyCopies } from "../helpers/keys.ts";
import { bootLoadingModules, unpackImage } from "../helpers/boot-modules.ts";
import { makeSigningKey, signModule, stripSignature } from "../helpers/modsign.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// Bring your own key: users who must sign modules after the build give bronze
// their key. The build signs with it, says it is not ephemeral, never copies it,
// and a module signed with it later loads on the kernel it built.
const WORK = join(PROJECT_ROOT, "_work");

test("a build with the user's own key signs every module with it, warns, never copies it, and a module signed later loads", async () => {
  const started = Date.now() - 1000;
  const keys = await tempDir("release-team-key-");
  const mine = await makeSigningKey(keys, "release-team");
  const keyBefore = { bytes: await readFile(mine.key), mtimeMs: (await stat(mine.key)).mtimeMs };
  // the project's cache: the packages are there already, and a new key always means a new kernel
  const cache = join(PROJECT_ROOT, ".cache", "bronze");
  const out = join(PROJECT_ROOT, "_out", "userkey");

  const result = await startBuild(await profileWithExtraConfig("userkey", ""), undefined, ["--module-signing-key", mine.key, "--module-signing-cert", mine.pem]);
  assert.equal(result.exitCode, 0, String(result.all));
  assert.match(String(result.all), /This key is NOT ephemeral/);
  assert.match(String(result.all), new RegExp(`modules signed with ${mine.key}: not ephemeral`));

  const certDer = await readFile(mine.der);
  const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as { kernel: { moduleSigningKey: string; moduleSigningCertSha256: string; moduleCount: number } };
  assert.equal(manifest.kernel.moduleSigningKey, "supplied");
  assert.equal(manifest.kernel.moduleSigningCertSha256, sha256(certDer), "the kernel embeds the user's certificate");
  assert.deepEqual(await readFile(join(out, "module-signing.der")), certDer);

  const work = await tempDir();
  const image = await unpackImage(out, work);
  const checks = await verifyModuleTree(join(image.root, "usr/lib/modules"), certDer);
  assert.equal(checks.length, manifest.kernel.moduleCount);
  assert.deepEqual(checks.filter((c) => c.verdict.status !== "ok"), [], "every module verifies against the user's certificate");

  // the key file is untouched and no copy of it exists anywhere bronze writes
  assert.deepEqual(await readFile(mine.key), keyBefore.bytes);
  assert.equal((await stat(mine.key)).mtimeMs, keyBefore.mtimeMs);
  const needles = keyNeedles(keyBefore.bytes.toString());
  assert.deepEqual(await findKeyCopies([cache, out], needles, started), [], "no copy in the cache (its compiled kernel trees too) or the outputs");
  assert.deepEqual(await findPrivateKeys([WORK], { needles, pemHeaders: false }), [], "no copy in the work tree");
  assert.deepEqual(await findPrivateKeys([tmpdir()], { needles, pemHeaders: false, exclude: [PROJECT_ROOT, keys] }), [], "no copy in the temp directory");

  // later, outside any build: the release team signs a module with its key, and the kernel loads it
  const hello = `/usr/lib/modules/${image.manifest.kernel.release}/extra/bronze_hello.ko`;
  const signedLater = await signModule(stripSignature(await readFile(join(image.root, hello))), mine, work);
  assert.equal(verifyModule(signedLater, signerCertificate(certDer)).status, "ok");
  const { report } = await bootLoadingModules(image, work, [{ path: "usr/lib/later/bronze_hello.ko", data: signedLater }], ["/usr/lib/later/bronze_hello.ko"]);
  assert.deepEqual(report, ["bronze: module /usr/lib/later/bronze_hello.ko loaded"]);
});
