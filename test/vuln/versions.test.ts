import assert from "node:assert/strict";
import { test } from "node:test";
import { execa } from "execa";
import { compareDebian, compareKernel, compareSemver } from "../../src/vuln/versions.ts";
import { seededRandom } from "../helpers/random.ts";

const TRICKY: [string, string][] = [
  ["1.0~rc1", "1.0"],
  ["1.0~rc1", "1.0~rc1~1"],
  ["1.0", "1.0-0"],
  ["1.0-1", "1.0+b1"],
  ["1:0.9", "2.0"],
  ["0:1.0", "1.0"],
  ["1.2.3-1", "1.2.3-1+deb12u1"],
  ["1.2.3-1+deb12u1", "1.2.3-1+deb12u2"],
  ["1.2.3-1~deb12u1", "1.2.3-1"],
  ["6.12.117-1~deb12u1", "6.12.117-1"],
  ["6.1.192-2", "6.12.117-1~deb12u1"],
  ["1.0a", "1.0"],
  ["1.0a", "1.0+"],
  ["1.0.", "1.0"],
  ["1.001", "1.1"],
  ["1.10", "1.9"],
  ["2.30-21", "2.30-21+deb11u1"],
  ["1.47.0-2", "1.47.0-2.1"],
  ["1.0-1ubuntu1", "1.0-1"],
  ["9.9.9", "10.0"],
  ["1~~", "1~"],
  ["1~~a", "1~~"],
  ["1.2+dfsg-1", "1.2-1"],
  ["3:1.0", "2:9.9"],
  ["0.9.13", "1.2.5"],
];

/** dpkg's own answer: -1, 0 or 1. */
async function dpkg(a: string, b: string): Promise<number> {
  for (const [op, value] of [["lt", -1], ["eq", 0]] as const) {
    if ((await execa("dpkg", ["--compare-versions", a, op, b], { reject: false })).exitCode === 0) return value;
  }
  return 1;
}

function randomVersion(next: () => number): string {
  const pick = (chars: string) => chars[Math.floor(next() * chars.length)] as string;
  const part = (n: number) => Array.from({ length: 1 + Math.floor(next() * n) }, () => pick("0123456789.~+ab")).join("");
  const epoch = next() < 0.15 ? `${Math.floor(next() * 3)}:` : "";
  const revision = next() < 0.6 ? `-${pick("0123456789")}${part(3).replace(/-/g, "")}` : "";
  return `${epoch}${pick("0123456789")}${part(6)}${revision}`;
}

test("Debian versions compare as dpkg --compare-versions says, on the tricky pairs and 300 random ones", async () => {
  const next = seededRandom(2222);
  const pairs: [string, string][] = [...TRICKY, ...TRICKY.map(([a, b]) => [b, a] as [string, string])];
  for (let i = 0; i < 300; i++) pairs.push(next() < 0.3 ? [randomVersion(next), randomVersion(next)] : ((v) => [v, v.replace(/.$/, pick(next))])(randomVersion(next)));
  const disagreements: string[] = [];
  for (const [a, b] of pairs) {
    const ours = Math.sign(compareDebian(a, b));
    const theirs = await dpkg(a, b);
    if (ours !== theirs) disagreements.push(`${a} vs ${b}: ours ${ours}, dpkg ${theirs}`);
  }
  assert.deepEqual(disagreements, [], `${pairs.length} pairs`);
});

function pick(next: () => number): string {
  return "0123456789~+.a"[Math.floor(next() * 14)] as string;
}

test("kernel and SEMVER orders", () => {
  assert.ok(compareKernel("6.1.192", "6.12") < 0);
  assert.ok(compareKernel("6.1.129", "6.1.192") < 0);
  assert.equal(compareKernel("6.1", "6.1.0"), 0);
  assert.ok(compareKernel("6.12-rc1", "6.12") < 0);
  assert.ok(compareSemver("1.0.0-alpha", "1.0.0") < 0);
  assert.ok(compareSemver("1.0.0-alpha.1", "1.0.0-alpha.beta") < 0);
  assert.ok(compareSemver("1.0.0-beta.11", "1.0.0-beta.2") > 0);
  assert.equal(compareSemver("1.0.0+build.1", "1.0.0"), 0);
  assert.throws(() => compareSemver("1.0", "1.0.0"), /not a semantic version/);
});
