/**
 * Records upstream kernel-hardening-checker's verdicts on the test inputs
 * (test/helpers/harden-cases.ts) into test/fixtures/harden/upstream-results.json, which the
 * unit test compares bronze's engine with, byte for byte.
 *
 * Usage: node scripts/harden-fixtures.ts --checkout path/to/kernel-hardening-checker
 * (an upstream checkout at the commit src/harden/rules.ts pins; scripts/harden-follow.ts
 * runs this after writing the rules).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFileAtomic } from "../src/core/atomic.ts";
import { hardenCases } from "../test/helpers/harden-cases.ts";
import { UPSTREAM } from "../src/harden/rules.ts";

const [flag, checkout] = process.argv.slice(2);
if (flag !== "--checkout" || !checkout) {
  console.error("usage: node scripts/harden-fixtures.ts --checkout UPSTREAM-CHECKOUT");
  process.exit(2);
}
const commit = execFileSync("git", ["-C", checkout, "rev-parse", "HEAD"], { encoding: "utf8" }).trim();
if (commit !== UPSTREAM.commit) {
  console.error(`${checkout} is at ${commit}, but src/harden/rules.ts follows ${UPSTREAM.commit}`);
  process.exit(2);
}
const tool = join(checkout, "bin", "kernel-hardening-checker");
const upstream = (args: string[]) => execFileSync("python3", [tool, ...args], { encoding: "utf8", maxBuffer: 64 << 20 });
const version = `${upstream(["--version"]).trim()} at ${commit}`;
const temp = mkdtempSync(join(tmpdir(), "harden-fixtures-"));
try {
  const cases = hardenCases().map((c, i) => {
    const args = ["--mode", "json"];
    for (const kind of ["config", "cmdline", "sysctl"] as const) {
      const text = c[kind];
      if (text === undefined) continue;
      const file = join(temp, `${i}.${kind}`);
      writeFileSync(file, text);
      args.push(`--${kind}`, file);
    }
    const output = upstream(args);
    const results = JSON.parse(output) as { option_name: string; check_result: string; check_result_bool: boolean }[];
    return {
      name: c.name,
      sha256: createHash("sha256").update(output).digest("hex"),
      checks: results.length,
      ok: results.filter((r) => r.check_result_bool).length,
      // the failing verdicts on Debian's configs, for reading and for pointing at a difference
      fail: c.name.startsWith("Debian") ? results.filter((r) => !r.check_result_bool).map((r) => `${r.option_name}: ${r.check_result}`) : undefined,
    };
  });
  const out = join(import.meta.dirname, "..", "test", "fixtures", "harden", "upstream-results.json");
  await writeFileAtomic(out, `${JSON.stringify({ upstream: UPSTREAM, tool: version, command: "kernel-hardening-checker --mode json", cases }, null, 1)}\n`);
  console.log(`${cases.length} cases written to ${out}`);
} finally {
  rmSync(temp, { recursive: true, force: true });
}
