import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { test } from "node:test";
import { bronze } from "../helpers/cli.ts";
import { makeSigningKey } from "../helpers/modsign.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

for (const command of ["build", "boot", "doctor"]) {
  test(`bronze ${command} --help describes the command`, async () => {
    const result = await bronze([command, "--help"]);
    assert.equal(result.exitCode, 0, String(result.all));
    assert.match(String(result.stdout), new RegExp(`Usage: bronze ${command}`));
  });
}

test("an unknown option is a usage error: exit code 2 and the help hint", async () => {
  const result = await bronze(["build", "--no-such-option"]);
  assert.equal(result.exitCode, 2);
  assert.match(String(result.stderr), /unknown option '--no-such-option'/);
});

test("an unknown command is a usage error", async () => {
  const result = await bronze(["frobnicate"]);
  assert.equal(result.exitCode, 2);
  assert.match(String(result.stderr), /unknown command 'frobnicate'/);
});

test("a missing profile names the file and exits 2", async () => {
  const result = await bronze(["build", "--profile", "no-such-profile"]);
  assert.equal(result.exitCode, 2);
  assert.match(String(result.stderr), /profiles\/no-such-profile\.yaml: cannot read: ENOENT/);
});

test("a bad profile names the file, the line and the fix, and exits 2", async () => {
  const dir = await tempDir();
  const file = join(dir, "bad.yaml");
  await writeFile(file, "name: bad\narch: riscv64\nkernel:\n  profile: minimal\npackages: [init]\ncmdline: console=ttyS0\n");
  const result = await bronze(["build", "--profile", file]);
  assert.equal(result.exitCode, 2);
  assert.match(String(result.stderr), /bad\.yaml:2: arch 'riscv64' is not supported; supported: x86_64/);
});

test("boot refuses a path that holds no UKI, exit code 2", async () => {
  const dir = await tempDir();
  const result = await bronze(["boot", dir]);
  assert.equal(result.exitCode, 2);
  assert.match(String(result.stderr), /holds no uki\.efi; run 'bronze build' first/);
});

test("doctor finds every host requirement on a set-up machine", async () => {
  const result = await bronze(["doctor"]);
  assert.equal(result.exitCode, 0, String(result.all));
  assert.match(String(result.stdout), /all \d+ host requirements are present/);
});

test("doctor names a missing tool and the Debian package that provides it", async () => {
  // a PATH holding only node: every host command is missing, the firmware files are not
  const result = await execa(process.execPath, [join(PROJECT_ROOT, "src/cli/entry.ts"), "doctor"], {
    env: { PATH: dirname(process.execPath) },
    extendEnv: false,
    reject: false,
  });
  assert.equal(result.exitCode, 1);
  assert.match(result.stdout, /mksquashfs\s+apt-get install squashfs-tools/);
  assert.match(result.stdout, /qemu-system-x86_64\s+apt-get install qemu-system-x86/);
  assert.doesNotMatch(result.stdout, /OVMF firmware/);
  assert.match(result.stdout, /^fix: apt-get install .*squashfs-tools/m);
});

test("a supplied module-signing key is checked before anything builds: each bad pairing exits 2 and says what to fix", async () => {
  const dir = await tempDir();
  const mine = await makeSigningKey(dir, "mine");
  const other = await makeSigningKey(dir, "other");
  const encrypted = join(dir, "encrypted.key");
  await execa("openssl", ["pkey", "-in", mine.key, "-aes256", "-passout", "pass:secret", "-out", encrypted]);
  const ec = join(dir, "ec.key");
  await execa("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", ec]);
  const cases: [string[], RegExp][] = [
    [["--module-signing-key", mine.key], /--module-signing-key needs --module-signing-cert too/],
    [["--module-signing-cert", mine.pem], /--module-signing-cert needs --module-signing-key too/],
    [["--module-signing-key", mine.key, "--module-signing-cert", other.pem], /other\.pem: this certificate is not the one of the key .*mine\.key/],
    [["--module-signing-key", encrypted, "--module-signing-cert", mine.pem], /encrypted\.key: the key is encrypted/],
    [["--module-signing-key", ec, "--module-signing-cert", mine.pem], /ec\.key: a ec key; .* give an RSA key/],
    [["--module-signing-key", mine.der, "--module-signing-cert", mine.pem], /mine\.der: not a PEM file/],
    [["--module-signing-key", mine.key, "--module-signing-cert", mine.key], /mine\.key: not an X\.509 certificate/],
    [["--module-signing-key", join(dir, "absent.key"), "--module-signing-cert", mine.pem], /absent\.key: cannot read it \(ENOENT\)/],
  ];
  for (const [args, message] of cases) {
    const result = await bronze(["build", "--profile", "minimal", ...args]);
    assert.equal(result.exitCode, 2, `${args.join(" ")}: ${String(result.all)}`);
    assert.match(String(result.stderr), message);
    assert.doesNotMatch(String(result.all), /package|kernel 6/, "nothing was built");
  }
  // the certificate may be DER too
  const good = await bronze(["build", "--profile", "no-such-profile", "--module-signing-key", mine.key, "--module-signing-cert", mine.der]);
  assert.equal(good.exitCode, 2);
  assert.match(String(good.stderr), /This key is NOT ephemeral/);
  assert.match(String(good.stderr), /no-such-profile/);
});

test("bronze build --arch names each architecture once and only those bronze builds; anything else is a usage error", async () => {
  const cases: [string[], RegExp][] = [
    [["--arch", "aarch64", "--arch", "aarch64"], /--arch aarch64 is given twice: name each architecture once/],
    [["--arch", "x86_64", "--arch", "sparc"], /sparc/],
  ];
  for (const [args, message] of cases) {
    const result = await bronze(["build", "--profile", "minimal", ...args]);
    assert.equal(result.exitCode, 2, `${args.join(" ")}: ${String(result.all)}`);
    assert.match(String(result.stderr), message);
    assert.doesNotMatch(String(result.all), /package|kernel 6/, "nothing was built");
  }
});

test("profile show prints what a profile resolves to and its ID without building; --json the same as loadProfile; a missing one exits 2", async () => {
  const { loadProfile } = await import("../../src/profile/profile.ts");
  const hello = await loadProfile(join(PROJECT_ROOT, "profiles", "hello.yaml"));
  const text = await bronze(["profile", "show", "hello"]);
  assert.equal(text.exitCode, 0, String(text.all));
  assert.match(String(text.stdout), new RegExp(`^id: +${hello.id}$`, "m"));
  assert.match(String(text.stdout), /^read from: +profiles\/hello\.yaml <- profiles\/minimal\.yaml$/m);
  assert.match(String(text.stdout), /^image: +minimal \(base minimal\)$/m);
  const json = await bronze(["profile", "show", join(PROJECT_ROOT, "profiles", "hello.yaml"), "--json"]);
  assert.equal(json.exitCode, 0, String(json.all));
  assert.deepEqual(JSON.parse(String(json.stdout)), JSON.parse(JSON.stringify(hello)));
  const missing = await bronze(["profile", "show", "no-such-profile"]);
  assert.equal(missing.exitCode, 2);
  assert.match(String(missing.stderr), /profiles\/no-such-profile\.yaml: cannot read: ENOENT/);
});

test("bronze boot takes the machine's memory in whole MiB, at least 128: anything else is a usage error", async () => {
  for (const memory of ["64", "256.5", "lots"]) {
    const result = await bronze(["boot", "--memory", memory, "_out/minimal"]);
    assert.equal(result.exitCode, 2, `--memory ${memory}: ${String(result.all)}`);
    assert.match(String(result.stderr), /option '--memory <MiB>' argument '.*' is invalid\. give a whole number of MiB, at least 128/);
  }
});

test("bronze repro --first-cache is read from where the command runs, and one that holds no store is a usage error", async () => {
  const cwd = await tempDir();
  await mkdir(join(cwd, "empty-cache"));
  for (const given of ["empty-cache", "no-such-cache"]) {
    const result = await execa(join(PROJECT_ROOT, "bin", "bronze"), ["repro", "--profile", "minimal", "--first-cache", given], { cwd, reject: false, all: true, env: { CI: "true" } });
    assert.equal(result.exitCode, 2, String(result.all));
    assert.ok(String(result.stderr).includes(`--first-cache ${join(cwd, given)}: not a bronze cache (no store/ in it)`), String(result.all));
  }
});
