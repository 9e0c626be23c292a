import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { bronze } from "../helpers/cli.ts";
import { tempDir } from "../helpers/tmp.ts";

test("`bronze pkg new` writes a pkg.yaml from a Debian source package that `bronze pkg build` builds as it is: a static program that runs", { timeout: 10 * 60_000 }, async () => {
  const pkgs = await tempDir();
  const made = await bronze(["pkg", "new", "libcap-ng", "--pkgs", pkgs]);
  assert.equal(made.exitCode, 0, String(made.all));
  assert.match(String(made.all), /wrote .*libcap-ng\/pkg\.yaml: libcap-ng 0\.8\.3-\S+, autotools, license LGPL-2\.1\+/);
  const text = await readFile(join(pkgs, "libcap-ng", "pkg.yaml"), "utf8");
  assert.match(text, /^ {4}file: libcap-ng_0\.8\.3\.orig\.tar\.gz\n {4}sha256: [0-9a-f]{64}$/m);
  assert.match(text, /^build:\n {2}system: autotools$/m);
  assert.match(text, /^sourceDateEpoch: [1-9]\d+$/m);
  // a second run would overwrite the author's edits: refused
  const again = await bronze(["pkg", "new", "libcap-ng", "--pkgs", pkgs]);
  assert.equal(again.exitCode, 2, String(again.all));
  assert.match(String(again.all), /libcap-ng\/pkg\.yaml exists already; remove it or edit it/);
  assert.equal((await bronze(["pkg", "new", "no-such-source-package", "--pkgs", pkgs])).exitCode, 2);

  const built = await bronze(["pkg", "build", "libcap-ng", "--pkgs", pkgs]);
  assert.equal(built.exitCode, 0, String(built.all));
  const out = /libcap-ng 0\.8\.3: [\d.]+ s, runtime [1-9]\d* file\(s\) [\d.]+ KiB, development [1-9]\d* file\(s\) [\d.]+ KiB in (\S+)/.exec(String(built.all))?.[1];
  assert.ok(out, String(built.all));
  const captest = join(out.startsWith("/") ? out : join(process.cwd(), out), "usr", "bin", "captest");
  assert.match((await execa("file", [captest])).stdout, /statically linked, stripped/);
  assert.match((await execa(captest, ["--text"], { reject: false })).stdout, /User +credentials uid:\d+ euid:\d+ suid:\d+\nGroup credentials gid:\d+[\s\S]*Bounding Set: /);
});

test("the meson helper on a real package: fribidi's pkg.yaml as `bronze pkg new` writes it builds, and its static program reorders right-to-left text", { timeout: 10 * 60_000 }, async () => {
  const pkgs = await tempDir();
  const made = await bronze(["pkg", "new", "fribidi", "--pkgs", pkgs]);
  assert.equal(made.exitCode, 0, String(made.all));
  assert.match(String(made.all), /wrote .*fribidi\/pkg\.yaml: fribidi 1\.0\.8-\S+, meson, license LGPL-2\.1\+/);
  assert.match(await readFile(join(pkgs, "fribidi", "pkg.yaml"), "utf8"), /^build:\n {2}system: meson$/m);
  const built = await bronze(["pkg", "build", "fribidi", "--pkgs", pkgs]);
  assert.equal(built.exitCode, 0, String(built.all));
  const out = /fribidi 1\.0\.8: [\d.]+ s, runtime 1 file\(s\) [\d.]+ KiB, development [1-9]\d* file\(s\) [\d.]+ KiB in (\S+)/.exec(String(built.all))?.[1];
  assert.ok(out, String(built.all));
  const program = join(out.startsWith("/") ? out : join(process.cwd(), out), "usr", "bin", "fribidi");
  assert.match((await execa("file", [program])).stdout, /statically linked, stripped/);
  // Hebrew alef, bet, gimel after Latin letters: shown right to left
  assert.equal((await execa(program, ["--nopad"], { input: "abc \u05d0\u05d1\u05d2\n" })).stdout, "abc \u05d2\u05d1\u05d0");
});
