import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { checkFiles } from "../../src/harden/check.ts";
import { runChecks } from "../../src/harden/engine.ts";
import { applyGate, loadExceptions, type GateScope } from "../../src/harden/gate.ts";
import { parseKernelConfig } from "../../src/harden/inputs.ts";
import { toUpstreamJson, upstreamJsonText } from "../../src/harden/report.ts";
import { UPSTREAM } from "../../src/harden/rules.ts";
import { bronze } from "../helpers/cli.ts";
import { debianConfig, hardenCases } from "../helpers/harden-cases.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

interface UpstreamRecord {
  upstream: typeof UPSTREAM;
  cases: { name: string; sha256: string; checks: number; ok: number; fail?: string[] }[];
}
const recorded = JSON.parse(readFileSync(join(PROJECT_ROOT, "test", "fixtures", "harden", "upstream-results.json"), "utf8")) as UpstreamRecord;

async function writeCase(dir: string, c: { config?: string; cmdline?: string; sysctl?: string }, prefix: string) {
  const files: { config?: string; cmdline?: string; sysctl?: string } = {};
  for (const kind of ["config", "cmdline", "sysctl"] as const) {
    const text = c[kind];
    if (text === undefined) continue;
    files[kind] = join(dir, `${prefix}.${kind}`);
    await writeFile(files[kind], text);
  }
  return files;
}

test("the recorded upstream verdicts are those of the release the rules pin", () => {
  assert.deepEqual(recorded.upstream, UPSTREAM);
  assert.equal(recorded.cases.length, hardenCases().length);
});

test("every verdict equals upstream kernel-hardening-checker's, byte for byte in its JSON, on Debian's configs and on variations of them for every arch", async () => {
  const dir = await tempDir();
  const cases = hardenCases();
  for (const [i, c] of cases.entries()) {
    const expected = recorded.cases[i];
    assert.ok(expected && expected.name === c.name, `fixture case ${i} is '${expected?.name}', the test case is '${c.name}': regenerate with scripts/harden-fixtures.ts`);
    const { results } = await checkFiles(await writeCase(dir, c, String(i)), "builtin");
    const ours = upstreamJsonText(results);
    const fails = results.filter((r) => !r.check_result_bool).map((r) => `${r.option_name}: ${r.check_result}`);
    if (expected.fail) assert.deepEqual(fails, expected.fail, `${c.name}: failing verdicts differ`);
    assert.equal(results.length, expected.checks, `${c.name}: number of checks`);
    assert.equal(results.filter((r) => r.check_result_bool).length, expected.ok, `${c.name}: OK count`);
    assert.equal(createHash("sha256").update(ours).digest("hex"), expected.sha256, `${c.name}: JSON output differs from upstream's`);
  }
});

function config(lines: string[], version = "6.1.0"): string {
  return [`# Linux/x86 ${version} Kernel Configuration`, "CONFIG_X86_64=y", ...lines].join("\n") + "\n";
}

function resultFor(configText: string, name: string, extra: { cmdline?: Map<string, string>; sysctl?: Map<string, string> } = {}) {
  const parsed = parseKernelConfig("test.config", configText);
  const run = runChecks({ arch: "X86_64", version: parsed.version, kconfig: parsed.options, ...extra });
  return run.results.map(toUpstreamJson).filter((r) => r.option_name === name);
}

test("kconfig checks: a value, 'is not set', absent, list membership ('*lockdown*')", () => {
  assert.equal(resultFor(config(["CONFIG_BUG=y"]), "CONFIG_BUG")[0]?.check_result, "OK");
  assert.equal(resultFor(config(["# CONFIG_BUG is not set"]), "CONFIG_BUG")[0]?.check_result, 'FAIL: "is not set"');
  assert.equal(resultFor(config([]), "CONFIG_BUG")[0]?.check_result, "FAIL: is not found");
  assert.equal(resultFor(config([]), "CONFIG_KEXEC")[0]?.check_result, "OK: is not found");
  const lsm = resultFor(config(['CONFIG_LSM="yama,lockdown"']), "CONFIG_LSM").map((r) => r.check_result);
  assert.deepEqual(lsm.slice(0, 3), ['OK: in "yama,lockdown"', 'OK: in "yama,lockdown"', 'FAIL: not in "yama,lockdown"']);
});

test("OR and AND compounds explain which alternative passed or which condition failed", () => {
  // OR: the second alternative passes and is named
  assert.equal(resultFor(config(["CONFIG_STRICT_KERNEL_RWX=n", "CONFIG_DEBUG_RODATA=y"]), "CONFIG_STRICT_KERNEL_RWX")[0]?.check_result, 'OK: CONFIG_DEBUG_RODATA is "y"');
  // AND: the condition (KFENCE) fails, so the suboption's check says so
  assert.equal(resultFor(config(["CONFIG_KFENCE_SAMPLE_INTERVAL=100"]), "CONFIG_KFENCE_SAMPLE_INTERVAL")[0]?.check_result, 'FAIL: CONFIG_KFENCE is not "y"');
  assert.equal(resultFor(config(["CONFIG_KFENCE=y", "CONFIG_KFENCE_SAMPLE_INTERVAL=100"]), "CONFIG_KFENCE_SAMPLE_INTERVAL")[0]?.check_result, "OK");
});

test("version checks read the kernel version from the config", () => {
  assert.equal(resultFor(config([], "5.4.208"), "CONFIG_REFCOUNT_FULL")[0]?.check_result, "OK: version >= (5, 4, 208)");
  assert.equal(resultFor(config([], "5.4.207"), "CONFIG_REFCOUNT_FULL")[0]?.check_result, "FAIL: is not found");
  assert.equal(resultFor(config([], "6.7.0"), "CONFIG_AMD_IOMMU_V2")[0]?.check_result, "OK: version >= (6, 7, 0)");
});

test("cmdline checks: 'is not off', 'is present', kstrtobool normalisation, and a kconfig default standing in for a parameter", () => {
  const c = config(["CONFIG_INIT_ON_ALLOC_DEFAULT_ON=y"]);
  const cmd = (line: string) => new Map(line.split(" ").map((w) => [w.split("=")[0] as string, w.includes("=") ? (w.split("=")[1] as string) : ""]));
  assert.equal(resultFor(c, "spectre_v2", { cmdline: cmd("spectre_v2=off") })[0]?.check_result, "FAIL: is off");
  assert.equal(resultFor(c, "spectre_v2", { cmdline: cmd("spectre_v2=retpoline") })[0]?.check_result, "OK: is not off (retpoline)");
  // an "off" among a list of values turns it off
  assert.equal(resultFor(c, "mds", { cmdline: cmd("mds=full,off") })[0]?.check_result, "FAIL: is off (full,off)");
  assert.equal(resultFor(c, "spectre_v2", { cmdline: cmd("mitigations=auto,nosmt") })[0]?.check_result, 'OK: mitigations is "auto,nosmt"');
  assert.equal(resultFor(c, "nosmt", { cmdline: cmd("nosmt") })[0]?.check_result, "OK: is present");
  assert.equal(resultFor(c, "init_on_alloc", { cmdline: cmd("quiet") })[0]?.check_result, 'OK: CONFIG_INIT_ON_ALLOC_DEFAULT_ON is "y"');
});

test("sysctl checks, and 'MAX' refined from the config's maximum (or the check dropped with a warning)", () => {
  const parsed = parseKernelConfig("t", config(["CONFIG_ARCH_MMAP_RND_BITS_MAX=32", "CONFIG_ARCH_MMAP_RND_BITS=32"]));
  const run = runChecks({ arch: "X86_64", version: parsed.version, kconfig: parsed.options, sysctl: new Map([["vm.mmap_rnd_bits", "28"], ["kernel.kptr_restrict", "2"]]) });
  const byName = new Map(run.results.map((r) => [toUpstreamJson(r).option_name, toUpstreamJson(r)]));
  assert.equal(byName.get("CONFIG_ARCH_MMAP_RND_BITS")?.desired_val, "32");
  assert.equal(byName.get("CONFIG_ARCH_MMAP_RND_BITS")?.check_result, "OK");
  assert.equal(byName.get("vm.mmap_rnd_bits")?.check_result, 'FAIL: "28"');
  assert.equal(byName.get("kernel.kptr_restrict")?.check_result, "OK");
  const noMax = runChecks({ sysctl: new Map([["kernel.kptr_restrict", "2"]]) });
  assert.ok(noMax.warnings.includes("can't check vm.mmap_rnd_bits without CONFIG_ARCH_MMAP_RND_BITS_MAX"));
  assert.ok(!noMax.results.some((r) => toUpstreamJson(r).option_name === "vm.mmap_rnd_bits"));
});

test("bronze harden check --json prints upstream's JSON; the table ends with the tally", async () => {
  const dir = await tempDir();
  const file = join(dir, "amd64.config");
  await writeFile(file, debianConfig("amd64_none_amd64"));
  const json = await bronze(["harden", "check", "--config", file, "--json"]);
  assert.equal(json.exitCode, 0, String(json.all));
  const parsed = JSON.parse(String(json.stdout)) as Record<string, unknown>[];
  assert.deepEqual(Object.keys(parsed[0] ?? {}), ["option_name", "type", "reason", "decision", "desired_val", "check_result", "check_result_bool"]);
  assert.equal(createHash("sha256").update(`${json.stdout}\n`).digest("hex"), recorded.cases[0]?.sha256);
  const table = await bronze(["harden", "check", "--config", file]);
  const { checks, ok } = recorded.cases[0] as { checks: number; ok: number };
  const tally = `\n${checks} checks: OK ${ok}, FAIL ${checks - ok} (built-in engine, kernel-hardening-checker ${UPSTREAM.release} rules)\n`;
  assert.ok(String(table.stdout).endsWith(tally.trimEnd()), `the table ends with '${tally.trim()}':\n${String(table.stdout).slice(-300)}`);
});

test("bad input is refused with the file, the line and the fix, exit code 2", async () => {
  const dir = await tempDir();
  const write = async (name: string, text: string | Buffer) => {
    await writeFile(join(dir, name), text);
    return join(dir, name);
  };
  const cases: { args: string[]; error: RegExp }[] = [
    { args: ["--config", await write("notes.txt", "# Linux/x86 6.1.0 Kernel Configuration\nCONFIG_X86_64=y\nhello world\n")], error: /notes\.txt:3: not a kernel config line: 'hello world'/ },
    { args: ["--config", await write("binary", Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 0xff]))], error: /binary: is a binary file/ },
    { args: ["--config", await write("nover.config", "CONFIG_X86_64=y\nCONFIG_BUG=y\n")], error: /nover\.config: has no '# Linux\/<arch> X\.Y\.Z Kernel Configuration' line.*pass --kernel-version X\.Y\.Z/ },
    { args: ["--config", await write("empty.config", config(["CONFIG_LSM="]))], error: /empty\.config:3: CONFIG_LSM has an empty value; write '# CONFIG_LSM is not set'/ },
    { args: ["--config", await write("twice.config", config(["CONFIG_BUG=y", "CONFIG_BUG=n"]))], error: /twice\.config:4: CONFIG_BUG is set again \(first at line 3\)/ },
    { args: ["--config", await write("noarch.config", "# Linux/x86 6.1.0 Kernel Configuration\nCONFIG_BUG=y\n")], error: /noarch\.config: sets none of CONFIG_X86_64=y.*pass --arch/ },
    { args: ["--config", join(dir, "nover.config"), "--kernel-version", "6.1"], error: /--kernel-version: kernel version '6\.1' is not X\.Y\.Z/ },
    { args: ["--config", await write("good.config", config(["CONFIG_BUG=y"])), "--arch", "ARM64"], error: /good\.config: is a config for X86_64 \(CONFIG_X86_64=y\), not for --arch ARM64/ },
    { args: ["--config", join(dir, "good.config"), "--arch", "SPARC"], error: /argument 'SPARC' is invalid.*X86_64, X86_32, ARM64, ARM, RISCV/ },
    { args: ["--cmdline", await write("cmdline", "quiet\n")], error: /--cmdline needs --config/ },
    { args: ["--sysctl", await write("sysctl", "kernel.kptr_restrict = 2\nthis is not a sysctl\n")], error: /sysctl:2: not a sysctl line: 'this is not a sysctl'/ },
    { args: ["--config", join(dir, "no-such.config")], error: /no-such\.config: cannot read: ENOENT/ },
  ];
  for (const c of cases) {
    const result = await bronze(["harden", "check", ...c.args]);
    assert.equal(result.exitCode, 2, `${c.args.join(" ")}: ${result.all}`);
    assert.match(String(result.stderr), c.error);
  }
  // with --arch and --kernel-version the same inputs are accepted
  const ok = await bronze(["harden", "check", "--config", join(dir, "noarch.config"), "--arch", "X86_64", "--json"]);
  assert.equal(ok.exitCode, 0, String(ok.all));
});

const scope: GateScope = { arch: "X86_64", kernelProfile: "test", decisions: ["defconfig", "kspp"], complete: true };

async function exceptionsFile(text: string) {
  const dir = await tempDir();
  await writeFile(join(dir, "exceptions.yaml"), text);
  return join(dir, "exceptions.yaml");
}

test("the gate fails on FAIL in its decision groups, suppresses reviewed exceptions with their reason, and calls unused ones stale", async () => {
  const parsed = parseKernelConfig("t", config(["CONFIG_MODULES=y", "# CONFIG_BUG is not set", "CONFIG_DEBUG_FS=y"]));
  const input = { arch: "X86_64" as const, version: parsed.version, kconfig: parsed.options };
  const results = runChecks(input).results.map(toUpstreamJson);
  const exceptions = await loadExceptions(
    await exceptionsFile(
      [
        "exceptions:",
        "  - option: CONFIG_MODULES",
        "    arch: all",
        "    value: y",
        "    reason: modules are signed and enforced in this test image",
        "  - option: CONFIG_BUG",
        "    arch: ARM64",
        "    reason: an exception for another arch must not apply here",
        "  - option: CONFIG_SLUB_DEBUG",
        "    arch: X86_64",
        "    kernelProfiles: [other]",
        "    reason: an exception for another profile must not apply here",
        "  - option: CONFIG_KEXEC",
        "    arch: all",
        "    reason: CONFIG_KEXEC passes here, so this exception is stale",
      ].join("\n"),
    ),
  );
  const verdict = applyGate(results, input, exceptions, scope);
  assert.equal(verdict.passed, false);
  assert.deepEqual(
    verdict.suppressed.map((s) => s.result.option_name),
    ["CONFIG_MODULES"],
  );
  assert.ok(verdict.failures.some((f) => f.option_name === "CONFIG_BUG"), "the ARM64 exception does not cover X86_64");
  assert.ok(verdict.failures.some((f) => f.option_name === "CONFIG_SLUB_DEBUG"), "another profile's exception does not apply");
  assert.ok(verdict.failures.every((f) => ["defconfig", "kspp"].includes(f.decision)));
  assert.ok(verdict.ungated.some((f) => f.decision === "grsec"), "other groups are reported, not enforced");
  assert.deepEqual(
    verdict.stale.map((e) => e.option),
    ["CONFIG_KEXEC"],
  );

  // a value-bound exception does not cover another value
  const other = parseKernelConfig("t", config(["CONFIG_MODULES=m"]));
  const otherInput = { ...input, kconfig: other.options };
  const otherVerdict = applyGate(runChecks(otherInput).results.map(toUpstreamJson), otherInput, exceptions, scope);
  assert.ok(otherVerdict.failures.some((f) => f.option_name === "CONFIG_MODULES"));
  // before compiling (kconfig only), exceptions for options not checked yet are not stale
  const early = applyGate(results, input, await loadExceptions(await exceptionsFile("exceptions:\n  - option: nosmt\n    arch: all\n    reason: a command-line exception, checked with the UKI\n")), { ...scope, complete: false });
  assert.deepEqual(early.stale, []);
});

test("an exceptions file with an unknown key, no reason or an unknown arch is refused at its line", async () => {
  const bad: [string, RegExp][] = [
    ["exceptions:\n  - option: CONFIG_BUG\n    arch: all\n    reason: a reason long enough to pass\n    expires: 2027\n", /exceptions\.yaml:5: unknown key 'expires' in 'exceptions\.0'; allowed: option, arch, kernelProfiles, value, reason/],
    ["exceptions:\n  - option: CONFIG_BUG\n    arch: all\n", /exceptions\.yaml:2: 'exceptions\.0\.reason' must be a non-empty string/],
    ["exceptions:\n  - option: CONFIG_BUG\n    arch: SPARC\n    reason: a reason long enough to pass\n", /exceptions\.yaml:3: arch 'SPARC' is not known/],
    ["exceptions:\n  - option: CONFIG_BUG\n    arch: all\n    reason: because\n", /exceptions\.yaml:4: the reason must say why/],
  ];
  for (const [text, error] of bad) await assert.rejects(loadExceptions(await exceptionsFile(text)), (e: Error) => error.test(e.message) || assert.fail(e.message));
});

test("the project's exceptions file loads and every entry has a reason", async () => {
  const exceptions = await loadExceptions(join(PROJECT_ROOT, "kernel", "hardening", "exceptions.yaml"));
  assert.ok(exceptions.length > 0);
  for (const e of exceptions) assert.ok(e.reason.length >= 20, e.option);
});

test("--engine upstream runs kernel-hardening-checker from PATH and reports the same verdicts", async (t) => {
  const which = await execa("sh", ["-c", "command -v kernel-hardening-checker"], { reject: false });
  if (which.exitCode !== 0) {
    t.skip("kernel-hardening-checker is not on PATH (it is not packaged for Debian 12); the recorded upstream verdicts above are the agreement check");
    return;
  }
  const dir = await tempDir();
  const file = join(dir, "amd64.config");
  await writeFile(file, debianConfig("amd64_none_amd64"));
  const up = await bronze(["harden", "check", "--config", file, "--json", "--engine", "upstream"]);
  const ours = await bronze(["harden", "check", "--config", file, "--json"]);
  assert.equal(up.exitCode, 0, String(up.all));
  assert.deepEqual(JSON.parse(String(up.stdout)), JSON.parse(String(ours.stdout)));
});

test("bronze harden gate: exit 1 listing what fails the gate, exit 0 once reviewed exceptions cover it; unknown decision groups are usage errors", async () => {
  const dir = await tempDir();
  const file = join(dir, "test.config");
  await writeFile(file, config(["CONFIG_MODULES=y", "CONFIG_DEBUG_FS=y"]));
  const failing = await bronze(["harden", "gate", "--config", file, "--exceptions", await exceptionsFile("exceptions: []\n")]);
  assert.equal(failing.exitCode, 1, String(failing.all));
  assert.match(String(failing.stderr), /kernel hardening gate failed for .*test\.config \(kernel profile default, X86_64, decisions defconfig, kspp\)/);
  assert.match(String(failing.stderr), /CONFIG_MODULES \(kconfig, kspp\/cut_attack_surface\) wants is not set: FAIL: "y"/);
  assert.doesNotMatch(String(failing.stderr), /CONFIG_DEBUG_FS/, "grsec is not a gated group by default");
  const grsec = await bronze(["harden", "gate", "--config", file, "--decisions", "grsec", "--exceptions", await exceptionsFile("exceptions: []\n")]);
  assert.equal(grsec.exitCode, 1);
  assert.match(String(grsec.stderr), /CONFIG_DEBUG_FS \(kconfig, grsec\/cut_attack_surface\) wants is not set: FAIL: "y"/);
  const only = await exceptionsFile(
    "exceptions:\n  - option: CONFIG_DEBUG_FS\n    arch: all\n    value: y\n    reason: debugfs is needed by this test's imaginary tooling\n",
  );
  const passing = await bronze(["harden", "gate", "--config", file, "--decisions", "grsec", "--exceptions", only]);
  assert.equal(passing.exitCode, 0, String(passing.all));
  assert.match(String(passing.stdout), /suppressed CONFIG_DEBUG_FS: FAIL: "y" \(.*exceptions\.yaml:2: debugfs is needed/);
  const unknown = await bronze(["harden", "gate", "--config", file, "--decisions", "kspp,nsa"]);
  assert.equal(unknown.exitCode, 2);
  assert.match(String(unknown.stderr), /--decisions: unknown decision group\(s\) nsa/);
});
