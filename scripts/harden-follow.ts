/**
 * Follows an upstream kernel-hardening-checker commit in one command: reads the checks of a
 * checkout (scripts/harden-rules.py), writes src/harden/rules.ts pinned to that commit, then
 * re-records test/fixtures/harden/ by running that checkout's own tool
 * (scripts/harden-fixtures.ts). Review the diff of both, then the gate's exceptions
 * (kernel/hardening/) on the three profiles: `make test` fails on a new check that a profile
 * fails and on an exception that no longer matches.
 *
 * Usage: node scripts/harden-follow.ts path/to/kernel-hardening-checker-checkout
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { writeFileAtomic } from "../src/core/atomic.ts";
import type { Check, Rule } from "../src/harden/rule-model.ts";

const checkout = process.argv[2];
if (!checkout || process.argv.length !== 3) {
  console.error("usage: node scripts/harden-follow.ts UPSTREAM-CHECKOUT");
  process.exit(2);
}
const git = (...args: string[]) => execFileSync("git", ["-C", checkout, ...args], { encoding: "utf8" }).trim();
if (git("status", "--porcelain", "--untracked-files=no")) {
  console.error(`${checkout}: the checkout has local changes; follow a commit as upstream published it`);
  process.exit(2);
}
const commit = git("rev-parse", "HEAD");
const release = git("describe", "--tags", "--always").replace(/^v/, "");
const committed = git("show", "-s", "--format=%cs", "HEAD");

const extracted = JSON.parse(
  execFileSync("python3", [join(import.meta.dirname, "harden-rules.py"), checkout], { encoding: "utf8", maxBuffer: 64 << 20 }),
) as Record<"kconfig" | "cmdline" | "sysctl", Rule[]>;

function rendered(check: Check): string {
  switch (check.kind) {
    case "version":
      return `atLeast(${check.atLeast.join(", ")})`;
    case "or":
    case "and":
      return `${check.kind}(${check.items.map(rendered).join(", ")})`;
    case "option": {
      const name = check.type === "kconfig" ? check.name.replace(/^CONFIG_/, "") : check.name;
      return `${check.type}(${[check.reason, check.decision, name, check.expected].map((s) => JSON.stringify(s)).join(", ")})`;
    }
  }
}

const rows = (rules: Rule[]) =>
  rules.map((r) => `  rule(${rendered(r.check)}${r.arches ? `, ${JSON.stringify(r.arches).replaceAll(",", ", ")}` : ""}),`).join("\n");

const upstream = { project: "kernel-hardening-checker", release, commit, committed, license: "GPL-3.0-only" };
const source = `/**
 * kernel-hardening-checker's recommendations as data, for bronze's own engine (engine.ts):
 * every check, its reason and decision group, the value it wants, the OR/AND compounds, the
 * kernel-version conditions and the arches each applies to, in upstream's order.
 *
 * Written by scripts/harden-follow.ts from upstream commit UPSTREAM.commit; do not edit by
 * hand, follow the next commit with that script. Upstream is GPL-3.0-only.
 */
import { and, atLeast, cmdline, kconfig, or, rule, sysctl, type Rule } from "./rule-model.ts";

export const UPSTREAM = ${JSON.stringify(upstream, null, 2).replace(/"(\w+)":/g, "$1:")} as const;

export const KCONFIG_RULES: readonly Rule[] = [
${rows(extracted.kconfig)}
];

export const CMDLINE_RULES: readonly Rule[] = [
${rows(extracted.cmdline)}
];

export const SYSCTL_RULES: readonly Rule[] = [
${rows(extracted.sysctl)}
];
`;
const target = join(import.meta.dirname, "..", "src", "harden", "rules.ts");
await writeFileAtomic(target, source);
const counts = Object.entries(extracted).map(([type, rules]) => `${rules.length} ${type}`).join(", ");
console.log(`${target}: ${counts} rules of ${upstream.project} ${release} (${commit})`);

execFileSync(process.execPath, [join(import.meta.dirname, "harden-fixtures.ts"), "--checkout", checkout], { stdio: "inherit" });
