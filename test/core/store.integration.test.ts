import assert from "node:assert/strict";
import { cp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { before, test } from "node:test";
import { sha256 } from "../../src/core/hash.ts";
import { readUkiSections } from "../../src/uki/uki.ts";
import { profileWithExtraConfig, startBuild } from "../helpers/build.ts";
import { bronze } from "../helpers/cli.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// A cache that never serves a corrupt entry. The builds here use a cache of their own, filled from the
// project's (the minimal image's packages and kernel), and the project's compiled kernel trees.
const PROJECT_CACHE = join(PROJECT_ROOT, ".cache", "bronze");
const COMPILE_CACHE = ["--compile-cache", join(PROJECT_CACHE, "compile")];
const OUT = join(PROJECT_ROOT, "_out", "integrity");
// made here, not in before(): a temporary directory lives as long as the scope that made it
const cache = await tempDir("bronze-integrity-cache-");
const profile = await profileWithExtraConfig("integrity", "");

interface Entry {
  dir: string;
  key: string;
  step: string;
}

async function entries(): Promise<Entry[]> {
  const store = join(cache, "store");
  return Promise.all(
    (await readdir(store)).map(async (key) => {
      const record = JSON.parse(await readFile(join(store, key, "record.json"), "utf8")) as { step: string };
      return { dir: join(store, key, "out"), key, step: record.step };
    }),
  );
}

/** sha256 of every published file but the report (it records build times). */
async function published(): Promise<Record<string, string>> {
  const files = (await readdir(OUT, { recursive: true, withFileTypes: true })).filter((e) => e.isFile() && e.name !== "report.html");
  const digests = await Promise.all(files.map(async (e) => [relative(OUT, join(e.parentPath, e.name)), sha256(await readFile(join(e.parentPath, e.name)))] as const));
  return Object.fromEntries(digests.sort(([a], [b]) => a.localeCompare(b)));
}

const build = (args: readonly string[] = []) => startBuild(profile, cache, [...COMPILE_CACHE, ...args]);

before(async () => {
  const minimal = await bronze(["build", "--profile", "minimal"]);
  assert.equal(minimal.exitCode, 0, String(minimal.all));
  await cp(join(PROJECT_CACHE, "store"), join(cache, "store"), { recursive: true, preserveTimestamps: true });
  const first = await build();
  assert.equal(first.exitCode, 0, String(first.all));
  assert.doesNotMatch(String(first.all), /ran: .*kernel/, "the minimal image's kernel serves this profile");
});

/** Flips a byte in the largest file of every entry of these steps (the hardest to hash); their keys and steps. */
async function flipEntries(steps: RegExp): Promise<Map<string, string>> {
  const flipped = new Map<string, string>();
  for (const entry of await entries()) {
    if (!steps.test(entry.step)) continue;
    const files = (await readdir(entry.dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
    const sized = await Promise.all(files.map(async (f) => ({ f, size: (await stat(f)).size })));
    const target = sized.sort((a, b) => b.size - a.size)[0]!.f;
    const data = await readFile(target);
    const at = Math.floor(data.length / 2);
    data.writeUInt8(data.readUInt8(at) ^ 0x20, at);
    await writeFile(target, data);
    flipped.set(entry.key, entry.step);
  }
  return flipped;
}

/** Builds, and checks that each corrupt entry the build met was one of `flipped`, named, and rebuilt. */
async function buildPast(flipped: ReadonlyMap<string, string>, kinds: readonly string[]): Promise<Set<string>> {
  const result = await build();
  const output = String(result.all);
  assert.equal(result.exitCode, 0, output);
  // the minimal image's rootfs, initramfs and UKI entries are in this cache too; this build looks up its own
  const warned = [...output.matchAll(/warning: cache entry ([0-9a-f]{64}) \(([a-z ]+)\) discarded: corrupt: its files' digest is [0-9a-f]{64}, its record says [0-9a-f]{64}; the step runs again/g)];
  for (const [, key, step] of warned) assert.equal(flipped.get(key!), step, `${key} is an entry whose byte was flipped`);
  assert.deepEqual(new Set(warned.map((w) => w[2])), new Set(kinds), output);
  const ran = /build step\(s\) ran: (.*)/.exec(output)?.[1]?.split(", ") ?? [];
  for (const step of kinds) assert.ok(ran.includes(step), `${step} ran again: ${ran.join(", ")}`);
  return new Set(warned.map((w) => w[1]!));
}

test("a byte flipped in any kind of cached entry (package, kernel, rootfs, initramfs, UKI) is found, named and rebuilt, never served", async () => {
  // the kernel apart: sealed again, it is a new kernel, and the steps after it look up other entries;
  // the package is init, a program that builds in a second (a library's rebuild would add a minute)
  const images = ["package init", "rootfs", "initramfs", "uki"];
  const flipped = await flipEntries(new RegExp(`^(${images.join("|")})$`));
  assert.deepEqual(new Set(flipped.values()), new Set(images));
  const used = await buildPast(flipped, images);
  const kernel = await flipEntries(/^kernel minimal$/);
  // the project's cache may hold kernels of earlier recipes too: they are flipped as well, and found by verify
  assert.deepEqual(new Set(kernel.values()), new Set(["kernel minimal"]));
  for (const key of await buildPast(kernel, ["kernel minimal"])) used.add(key);

  const all = new Map([...flipped, ...kernel]);
  const verify = await bronze(["cache", "verify", "--cache-dir", cache, ...COMPILE_CACHE]);
  assert.equal(verify.exitCode, 1, String(verify.all));
  const discarded = [...String(verify.stdout).matchAll(/discarded ([0-9a-f]{64})/g)].map((m) => m[1]);
  assert.deepEqual(new Set(discarded), new Set([...all.keys()].filter((k) => !used.has(k))), "verify finds the corrupt entries no build looked up");
  const again = await bronze(["cache", "verify", "--cache-dir", cache, ...COMPILE_CACHE]);
  assert.equal(again.exitCode, 0, String(again.all));
  assert.match(String(again.stdout), /bronze cache verify: \d+ entries intact, 0 discarded; [1-9]\d* compiled kernel tree\(s\) intact, 0 discarded/);
});

test("20 builds killed with SIGKILL at random moments, each followed by a normal build: what is published is always a clean build's", async () => {
  // the steps after the kernel run again each time: package init, rootfs, initramfs, UKI, installer, publishing
  const forget = async () => {
    for (const entry of await entries()) if (/^(package init|rootfs|initramfs|uki|installer)$/.test(entry.step)) await rm(join(entry.dir, ".."), { recursive: true });
  };
  await forget();
  const started = Date.now();
  const clean = await build();
  const duration = Date.now() - started;
  assert.equal(clean.exitCode, 0, String(clean.all));
  const expected = await published();
  const moments: number[] = [];
  for (let i = 0; i < 20; i++) {
    await forget();
    const killed = build();
    const after = Math.floor(Math.random() * duration);
    moments.push(after);
    await new Promise((r) => setTimeout(r, after));
    killed.kill("SIGKILL");
    await killed;
    const next = await build();
    assert.equal(next.exitCode, 0, `after a kill at ${after} ms:\n${String(next.all)}`);
    assert.doesNotMatch(String(next.all), /discarded/, `after a kill at ${after} ms, no entry was corrupt`);
    assert.deepEqual(await published(), expected, `after a kill at ${after} ms`);
  }
  console.log(`a build of these steps took ${duration} ms; killed at ${moments.join(", ")} ms`);
});

test("a kernel sealed again (its entry lost: a new key) makes everything that holds its image or modules again", async () => {
  const before = JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as { kernel: { moduleSigningCertSha256: string } };
  for (const entry of await entries()) if (entry.step === "kernel minimal") await rm(join(entry.dir, ".."), { recursive: true });
  const result = await build();
  const output = String(result.all);
  assert.equal(result.exitCode, 0, output);
  const ran = /build step\(s\) ran: (.*)/.exec(output)?.[1]?.split(", ") ?? [];
  for (const step of ["kernel minimal", "rootfs", "initramfs", "uki", "installer"]) assert.ok(ran.includes(step), `${step} ran again: ${ran.join(", ")}`);
  assert.ok(!ran.includes("kernel compile minimal"), "a seal, not a compile");
  const after = JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as typeof before;
  assert.notEqual(after.kernel.moduleSigningCertSha256, before.kernel.moduleSigningCertSha256, "a new key");
  // the UKI boots the kernel that was published beside it
  const linux = readUkiSections(await readFile(join(OUT, "uki.efi"))).find((s) => s.name === ".linux")!;
  const vmlinuz = await readFile(join(OUT, "vmlinuz"));
  assert.ok(Buffer.from(linux.data).subarray(0, vmlinuz.length).equals(vmlinuz));
});
