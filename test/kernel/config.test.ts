import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { InputError } from "../../src/core/errors.ts";
import { kernelFragments } from "../../src/kernel/build.ts";
import { describeMismatches, mergeFragments, parseFragment, renderSettings, unmetSettings } from "../../src/kernel/config.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

test("fragments merge in order, a later fragment overriding an earlier one, keeping file and line", () => {
  const merged = mergeFragments([
    { file: "common.config", text: "CONFIG_A=y\n# comment\nCONFIG_B=m\n" },
    { file: "profile.config", text: "\n# CONFIG_A is not set\nCONFIG_C=\"text\"\n" },
  ]);
  assert.deepEqual(merged, [
    { option: "CONFIG_B", value: "m", file: "common.config", line: 3 },
    { option: "CONFIG_A", value: "n", file: "profile.config", line: 2 },
    { option: "CONFIG_C", value: '"text"', file: "profile.config", line: 3 },
  ]);
  assert.equal(renderSettings(merged), 'CONFIG_B=m\n# CONFIG_A is not set\nCONFIG_C="text"\n');
});

test("a line that is not Kconfig, or an empty value, is an input error naming file and line", () => {
  assert.throws(
    () => parseFragment({ file: "x.config", text: "CONFIG_A=y\nCONFIG_B y\n" }),
    (e: unknown) => e instanceof InputError && /^x\.config:2: not a Kconfig line/.test(e.message) && e.exitCode === 2,
  );
  assert.throws(() => parseFragment({ file: "x.config", text: "CONFIG_A=\n" }), /x\.config:1: CONFIG_A has an empty value/);
});

test("options that did not survive resolution are reported with their fragment and line", () => {
  const settings = parseFragment({ file: "p.config", text: "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_D=m\n" });
  const dotConfig = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_D=y\n";
  const unmet = unmetSettings(settings, dotConfig);
  assert.deepEqual(
    unmet.map((m) => [m.setting.option, m.actual]),
    [
      ["CONFIG_B", "n"],
      ["CONFIG_C", "y"],
      ["CONFIG_D", "y"],
    ],
  );
  const text = describeMismatches(unmet);
  assert.match(text, /p\.config:2: CONFIG_B=y but the resolved config has it unset/);
  assert.match(text, /p\.config:4: CONFIG_D=m but the resolved config has CONFIG_D=y/);
});

test("the shipped minimal profile's fragments parse and ask for what boots bronze", async () => {
  const settings = mergeFragments(await kernelFragments(PROJECT_ROOT, { arch: "x86_64", profile: "minimal", extraConfig: [], modules: [] }));
  const value = new Map(settings.map((s) => [s.option, s.value]));
  for (const option of ["CONFIG_EFI_STUB", "CONFIG_SQUASHFS", "CONFIG_BLK_DEV_LOOP", "CONFIG_DEVTMPFS", "CONFIG_RD_ZSTD", "CONFIG_MODULE_SIG_ALL", "CONFIG_MODULE_SIG_FORCE"]) {
    assert.equal(value.get(option), "y", option);
  }
  assert.ok([...value.values()].includes("m"), "at least one module, so signing is exercised");
  await assert.rejects(kernelFragments(PROJECT_ROOT, { arch: "x86_64", profile: "no-such-profile", extraConfig: [], modules: [] }), /profiles\/no-such-profile\.config is missing/);
  assert.ok((await readFile(join(PROJECT_ROOT, "kernel/config/common.config"), "utf8")).length > 0);
});

test("a profile fragment that says '# extends: NAME' comes after NAME's fragments; a loop is an input error", async () => {
  const files = (await kernelFragments(PROJECT_ROOT, { arch: "x86_64", profile: "metal", extraConfig: [], modules: [] })).map((f) => f.file);
  assert.deepEqual(files, ["kernel/config/common.config", "kernel/config/x86_64.config", "kernel/config/hardening.config", "kernel/config/hardening-x86_64.config", "kernel/config/profiles/default.config", "kernel/config/profiles/metal.config"]);
  const arm = (await kernelFragments(PROJECT_ROOT, { arch: "aarch64", profile: "minimal", extraConfig: [], modules: [] })).map((f) => f.file);
  assert.deepEqual(arm, ["kernel/config/common.config", "kernel/config/aarch64.config", "kernel/config/hardening.config", "kernel/config/hardening-aarch64.config", "kernel/config/profiles/minimal.config"]);

  const root = await tempDir();
  await mkdir(join(root, "kernel/config/profiles"), { recursive: true });
  await writeFile(join(root, "kernel/config/common.config"), "CONFIG_A=y\n");
  await writeFile(join(root, "kernel/config/x86_64.config"), "");
  await writeFile(join(root, "kernel/config/hardening.config"), "");
  await writeFile(join(root, "kernel/config/hardening-x86_64.config"), "");
  await writeFile(join(root, "kernel/config/profiles/a.config"), "# extends: b\n");
  await writeFile(join(root, "kernel/config/profiles/b.config"), "# extends: a\n");
  await assert.rejects(kernelFragments(root, { arch: "x86_64", profile: "a", extraConfig: [], modules: [] }), (e: unknown) => {
    assert.ok(e instanceof InputError);
    assert.match(e.message, /b\.config: '# extends: a' makes a loop \(a -> b -> a\)/);
    return true;
  });
});
