import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import { MODULE_SIG_MAGIC, signerCertificate, verifyModule, verifyModuleTree } from "../../src/kernel/module-sig.ts";
import { makeSigningKey, signModule } from "../helpers/modsign.ts";
import { tempDir } from "../helpers/tmp.ts";

const dir = await tempDir();
const content = Buffer.from("\x7fELF pretend module ".repeat(500));
let build: Awaited<ReturnType<typeof makeSigningKey>>;
let other: Awaited<ReturnType<typeof makeSigningKey>>;

before(async () => {
  build = await makeSigningKey(dir, "build");
  other = await makeSigningKey(dir, "other");
});

test("a module signed by the kernel's key verifies (issuer+serial, key identifier, other digests)", async () => {
  const cert = signerCertificate(await readFile(build.der));
  assert.deepEqual(verifyModule(await signModule(content, build, dir), cert), { status: "ok", digest: "sha512" });
  assert.deepEqual(verifyModule(await signModule(content, build, dir, { keyId: true }), cert), { status: "ok", digest: "sha512" });
  assert.deepEqual(verifyModule(await signModule(content, build, dir, { digest: "sha256" }), cert), { status: "ok", digest: "sha256" });
});

test("unsigned, foreign-signed, tampered and malformed modules are each told apart", async () => {
  const cert = signerCertificate(await readFile(build.der));
  assert.deepEqual(verifyModule(content, cert), { status: "unsigned" });
  assert.equal(verifyModule(await signModule(content, other, dir), cert).status, "foreign");
  assert.equal(verifyModule(await signModule(content, other, dir, { keyId: true }), cert).status, "foreign");

  const tampered = await signModule(content, build, dir);
  tampered[100] = (tampered[100] ?? 0) ^ 0xff;
  assert.deepEqual(verifyModule(tampered, cert), { status: "bad-signature", digest: "sha512" });

  const truncated = Buffer.concat([Buffer.from("xx"), Buffer.alloc(12, 0xff), MODULE_SIG_MAGIC]);
  assert.equal(verifyModule(truncated, cert).status, "malformed");
});

test("a module tree is checked file by file", async () => {
  const tree = await tempDir();
  await writeFile(join(tree, "good.ko"), await signModule(content, build, dir));
  await writeFile(join(tree, "bad.ko"), await signModule(content, other, dir));
  await writeFile(join(tree, "plain.ko"), content);
  await writeFile(join(tree, "modules.dep"), "not a module");
  const checks = await verifyModuleTree(tree, await readFile(build.der));
  assert.deepEqual(
    checks.map((c) => [c.path, c.verdict.status]),
    [
      ["bad.ko", "foreign"],
      ["good.ko", "ok"],
      ["plain.ko", "unsigned"],
    ],
  );
});
