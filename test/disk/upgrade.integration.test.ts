import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS } from "../../src/boot/qemu.ts";
import { bronze } from "../helpers/cli.ts";
import { PROJECT_ROOT } from "../helpers/tmp.ts";

// A/B upgrades in QEMU: a disk made from the minimal image (0.1.0) is upgraded to 0.1.1, which
// boots and is marked good by init; then to 0.1.2, whose UKI cannot reach ready (its kernel finds
// no init and panics): after its tries systemd-boot goes back to 0.1.1 by itself.

let dir = "";
let disk = "";

async function buildVersion(name: string, version: string, extraCmdline = ""): Promise<string> {
  const minimal = await readFile(join(PROJECT_ROOT, "profiles", "minimal.yaml"), "utf8");
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, minimal.replace(/^name: minimal$/m, `name: ${name}`).replace(/^(cmdline: .*)$/m, `$1${extraCmdline}`));
  const built = await bronze(["build", "--profile", file], { BRONZE_VERSION: version });
  assert.equal(built.exitCode, 0, String(built.all));
  return join(PROJECT_ROOT, "_out", name, "installer");
}

const entries = async () => (await execa("mdir", ["-i", `${disk}@@${1 << 20}`, "-b", "::/EFI/Linux"])).stdout.split("\n").map((l) => l.replace("::/EFI/Linux/", "")).sort();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "bronze-upgrade-test-"));
  const built = await bronze(["build", "--profile", "minimal"]);
  assert.equal(built.exitCode, 0, String(built.all));
  disk = join(dir, "disk.raw");
  const made = await bronze(["image", "disk", "--from", join(PROJECT_ROOT, "_out", "minimal", "installer"), "--out", disk, "--size", "256M"]);
  assert.equal(made.exitCode, 0, String(made.all));
});

after(() => rm(dir, { recursive: true, force: true }));

test("after an upgrade the next boot runs the new version, which init marks good; /var is kept; it stays the default", async () => {
  const first = await boot({ kind: "disk", disk }, BOOT_DEFAULTS);
  assert.equal(first.ready.version, "0.1.0");
  assert.equal(first.ready.boots, "1");

  const upgraded = await bronze(["upgrade", "--disk", disk, "--image", await buildVersion("upgrade-good", "0.1.1")]);
  assert.equal(upgraded.exitCode, 0, String(upgraded.all));
  assert.deepEqual(await entries(), ["bronze-0.1.0.efi", "bronze-0.1.1+3.efi"]);

  const second = await boot({ kind: "disk", disk }, BOOT_DEFAULTS);
  assert.deepEqual(second.ready, { root: "ro", var: "rw", varfs: "ext4", boots: "2", version: "0.1.1", services: "0" });
  assert.ok(second.console.some((l) => l.includes("boot counting: /EFI/Linux/bronze-0.1.1+2-1.efi is good, now /EFI/Linux/bronze-0.1.1.efi")), "systemd-boot counted the try, init blessed it");
  assert.deepEqual(await entries(), ["bronze-0.1.0.efi", "bronze-0.1.1.efi"]);

  const third = await boot({ kind: "disk", disk }, BOOT_DEFAULTS);
  assert.equal(third.ready.version, "0.1.1");
  assert.equal(third.ready.boots, "3");
  assert.ok(!third.console.some((l) => l.includes("boot counting:")), "nothing left to bless");
});

test("an upgrade to a UKI that never reaches ready is abandoned after its tries: the machine ends up on the previous version by itself", async () => {
  const broken = await buildVersion("upgrade-broken", "0.1.2", " rdinit=/nonexistent");
  const upgraded = await bronze(["upgrade", "--disk", disk, "--image", broken, "--tries", "2"]);
  assert.equal(upgraded.exitCode, 0, String(upgraded.all));
  assert.match(String(upgraded.stdout), /fallback bronze-0\.1\.1\.efi; removed bronze-0\.1\.0\.efi/);
  assert.deepEqual(await entries(), ["bronze-0.1.1.efi", "bronze-0.1.2+2.efi"]);

  const result = await boot({ kind: "disk", disk }, { ...BOOT_DEFAULTS, allowReboot: true, timeoutMs: 300_000 });
  assert.equal(result.ready.version, "0.1.1", "back on the previous version");
  assert.equal(result.kernelStarts, 3, "two failed tries of 0.1.2, then 0.1.1");
  assert.equal(result.console.filter((l) => l.includes("Kernel panic")).length, 2, "each try of 0.1.2 panicked (no init)");
  assert.deepEqual(await entries(), ["bronze-0.1.1.efi", "bronze-0.1.2+0-2.efi"], "the bad entry is marked so by its name");
});

test("upgrade refuses a version the disk has, a file that is not a disk and bad --tries, exit code 2", async () => {
  const same = await bronze(["upgrade", "--disk", disk, "--image", join(PROJECT_ROOT, "_out", "upgrade-good", "installer")]);
  assert.equal(same.exitCode, 2);
  assert.match(String(same.stderr), /version 0\.1\.1 is on the disk already \(bronze-0\.1\.1\.efi\)/);
  const notDisk = await bronze(["upgrade", "--disk", join(PROJECT_ROOT, "package.json"), "--image", join(PROJECT_ROOT, "_out", "upgrade-good", "installer")]);
  assert.equal(notDisk.exitCode, 2);
  assert.match(String(notDisk.stderr), /package\.json: (no GPT|too short to hold a GPT)/);
  const tries = await bronze(["upgrade", "--disk", disk, "--image", join(PROJECT_ROOT, "_out", "upgrade-good", "installer"), "--tries", "0"]);
  assert.equal(tries.exitCode, 2);
  assert.match(String(tries.stderr), /--tries 0: give 1 to 9/);
});
