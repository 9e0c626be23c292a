import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { InputError } from "../../src/core/errors.ts";
import { buildOrder, loadPackages } from "../../src/pkgs/graph.ts";
import { loadPackage } from "../../src/pkgs/schema.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

async function pkgFile(dir: string, name: string, text: string): Promise<string> {
  await mkdir(join(dir, name), { recursive: true });
  const file = join(dir, name, "pkg.yaml");
  await writeFile(file, text);
  return file;
}

const VALID = `name: hello
version: "1.0"
license: MIT
sourceDateEpoch: 1
sources:
  - path: src
steps:
  install: install -D hello "$OUT/usr/bin/hello"
`;

test("the shipped packages load, with every source pinned by sha256 or kept in the tree", async () => {
  const defs = await loadPackages(join(PROJECT_ROOT, "pkgs"));
  assert.ok(defs.has("musl") && defs.has("init"));
  assert.equal(defs.get("hello-module")?.kind, "kernel-module");
  assert.equal(defs.get("init")?.kind, "userland");
  for (const def of defs.values()) {
    for (const src of def.sources) {
      if (src.kind !== "local") assert.match(src.sha256, /^[0-9a-f]{64}$/, `${def.name} source pinned`);
    }
  }
  assert.deepEqual(
    buildOrder(defs, ["init"], "test").map((d) => d.name),
    ["musl", "init"],
  );
});

test("a valid definition loads", async () => {
  const dir = await tempDir();
  const def = await loadPackage(await pkgFile(dir, "hello", VALID));
  assert.equal(def.name, "hello");
  assert.equal(def.version, "1.0");
  assert.deepEqual(def.sources, [{ kind: "local", path: join(dir, "hello", "src") }]);
});

const BAD: [string, string, RegExp][] = [
  ["unknown key", VALID.replace("license: MIT", "licence: MIT"), /pkg\.yaml:3: unknown key 'licence'/],
  ["name not the directory", VALID.replace("name: hello", "name: other"), /pkg\.yaml:1: name 'other' must match the package directory 'hello'/],
  ["bad sha256", VALID.replace("  - path: src", "  - debian: x\n    version: \"1-1\"\n    file: x.tar.gz\n    sha256: abc"), /pkg\.yaml:9: 'sources.0.sha256' 'abc' is not valid: 64 lowercase hex digits/],
  ["source path escapes", VALID.replace("path: src", "path: ../other"), /pkg\.yaml:6: 'sources.0.path' '..\/other' is not valid/],
  ["no install step", VALID.replace(/steps:[\s\S]*/, "steps:\n  build: make\n"), /pkg\.yaml:8: 'steps.install' is required/],
  ["unquoted version number", VALID.replace('version: "1.0"', "version: 1.0"), /pkg\.yaml:2: 'version' is read as the number 1; quote it/],
  ["unknown kind", VALID.replace("license: MIT", "license: MIT\nkind: firmware"), /pkg\.yaml:4: kind 'firmware' is not known; known: userland, kernel-module/],
  ["kernel module with steps", VALID.replace("license: MIT", "license: MIT\nkind: kernel-module"), /pkg\.yaml:9: a kernel-module package has no steps/],
  ["broken YAML", VALID.replace('version: "1.0"', "version: [1.0"), /pkg\.yaml:\d+: not valid YAML/],
];

for (const [what, text, expected] of BAD) {
  test(`bad definition (${what}) is an input error naming the file and line`, async () => {
    const dir = await tempDir();
    const file = await pkgFile(dir, "hello", text);
    await assert.rejects(loadPackage(file), (e: unknown) => {
      assert.ok(e instanceof InputError, String(e));
      assert.equal(e.exitCode, 2);
      assert.match(e.message, expected);
      return true;
    });
  });
}

test("unknown dependencies and cycles are refused by name", async () => {
  const dir = await tempDir();
  await pkgFile(dir, "a", VALID.replace("name: hello", "name: a") + "dependencies: [b]\n");
  await pkgFile(dir, "b", VALID.replace("name: hello", "name: b") + "dependencies: [a]\n");
  await pkgFile(dir, "c", VALID.replace("name: hello", "name: c") + "dependencies: [nope]\n");
  const defs = await loadPackages(dir);
  assert.throws(() => buildOrder(defs, ["a"], "profile.yaml"), /dependency cycle: a -> b -> a/);
  assert.throws(() => buildOrder(defs, ["c"], "profile.yaml"), /c\/pkg\.yaml: unknown package 'nope'/);
  assert.throws(() => buildOrder(defs, ["zzz"], "profile.yaml"), /^InputError: profile\.yaml: unknown package 'zzz'/);
});

test("patches: each a file of the package pinned by sha256, with the advisories it fixes; a wrong digest or field is named", async () => {
  const dir = await tempDir();
  const patched = `${VALID}patches:\n  - file: fix.patch\n    sha256: ${"ab".repeat(32)}\n    fixes: [CVE-2025-26519]\n    upstream: ${"a".repeat(40)}\n`;
  const file = await pkgFile(dir, "hello", patched);
  await writeFile(join(dir, "hello", "fix.patch"), "--- a/x\n+++ b/x\n");
  const def = await loadPackage(file);
  assert.deepEqual(def.patches.map((p) => [p.file, p.fixes, p.upstream]), [["fix.patch", ["CVE-2025-26519"], "a".repeat(40)]]);
  const { verifiedPatches } = await import("../../src/pkgs/build.ts");
  await assert.rejects(verifiedPatches(def), (e: Error) => e instanceof InputError && e.message.includes(`${file}: patches[0]: fix.patch has sha256 `) && e.message.includes("not the pinned abab"));
  for (const [bad, pattern] of [
    ["file: ../fix.patch", /a path inside the package directory/],
    ["file: fix.patch\n    sha256: x", /64 lowercase hex digits/],
    [`file: fix.patch\n    sha256: ${"ab".repeat(32)}\n    fixes: [cve 1]`, /an advisory id such as CVE-2025-26519/],
    [`file: fix.patch\n    sha256: ${"ab".repeat(32)}\n    author: me`, /author/],
  ] as const) {
    await pkgFile(dir, "hello", `${VALID}patches:\n  - ${bad}\n`);
    await assert.rejects(loadPackage(file), pattern);
  }
  const musl = (await loadPackages(join(PROJECT_ROOT, "pkgs"))).get("musl");
  assert.ok(musl && (await verifiedPatches(musl)).some((p) => p.fixes.includes("CVE-2025-26519")), "musl carries the CVE-2025-26519 fix, its digest pinned");
});
