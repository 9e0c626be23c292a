import assert from "node:assert/strict";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { derivedGuid } from "../../src/core/guid.ts";
import { GptError, gptLayout, parseGpt, PARTITION_TYPES, type GptLayout } from "../../src/disk/gpt.ts";
import { compareVersions, parseEntry, planUpgrade } from "../../src/disk/upgrade.ts";
import { tempDir } from "../helpers/tmp.ts";

// Our GPT writer read back by util-linux's sfdisk and checked by gdisk's sgdisk -v; the A/B upgrade plan.

const MiB = 1 << 20;
const guid = (label: string) => derivedGuid(Buffer.from(`test\0${label}`));

function twoPartitions(size: number): GptLayout {
  return gptLayout(guid("disk"), size, [
    { label: "ESP", type: PARTITION_TYPES.esp, guid: guid("ESP"), size: 16 * MiB },
    { label: "var", type: PARTITION_TYPES.var, guid: guid("var") },
  ]);
}

async function writeDisk(layout: GptLayout): Promise<string> {
  const file = join(await tempDir(), "disk.raw");
  const handle = await open(file, "w");
  await handle.truncate(layout.sizeBytes);
  await handle.write(layout.head, 0, layout.head.length, 0);
  await handle.write(layout.tail, 0, layout.tail.length, layout.tailOffset);
  await handle.close();
  return file;
}

test("sfdisk reads back the disk GUID, types, GUIDs, labels and 1 MiB-aligned extents; sgdisk -v finds no problem", async () => {
  const layout = twoPartitions(64 * MiB);
  const file = await writeDisk(layout);
  const { partitiontable: table } = JSON.parse((await execa("sfdisk", ["--json", file])).stdout) as {
    partitiontable: { label: string; id: string; sectorsize: number; firstlba: number; lastlba: number; partitions: { start: number; size: number; type: string; uuid: string; name: string }[] };
  };
  assert.equal(table.label, "gpt");
  assert.equal(table.id, guid("disk").toUpperCase());
  assert.equal(table.firstlba, 34);
  assert.equal(table.lastlba, 64 * 2048 - 34);
  assert.deepEqual(
    table.partitions.map(({ start, size, type, uuid, name }) => ({ start, size, type, uuid, name })),
    [
      { start: 2048, size: 16 * 2048, type: PARTITION_TYPES.esp.toUpperCase(), uuid: guid("ESP").toUpperCase(), name: "ESP" },
      // the last partition takes the rest, in whole MiB
      { start: 17 * 2048, size: 46 * 2048, type: PARTITION_TYPES.var.toUpperCase(), uuid: guid("var").toUpperCase(), name: "var" },
    ],
  );
  const verify = await execa("sgdisk", ["-v", file], { reject: false, all: true });
  assert.equal(verify.exitCode, 0, verify.all);
  assert.match(verify.all ?? "", /No problems found/);
  assert.deepEqual(twoPartitions(64 * MiB), layout, "same inputs, same bytes");
});

test("a damaged primary entry array is noticed by sfdisk and sgdisk, which fall back to the backup: the CRCs are real", async () => {
  const layout = twoPartitions(32 * MiB);
  layout.head.writeUInt8(layout.head.readUInt8(1024 + 41) ^ 0x10, 1024 + 41); // the first partition's last LBA
  const file = await writeDisk(layout);
  const sfdisk = await execa("sfdisk", ["--json", file], { reject: false });
  assert.match(sfdisk.stderr, /primary GPT table is corrupt, but the backup appears OK/);
  assert.equal((JSON.parse(sfdisk.stdout) as { partitiontable: { partitions: { size: number }[] } }).partitiontable.partitions[0]?.size, 16 * 2048);
  const verify = await execa("sgdisk", ["-v", file], { reject: false, all: true });
  assert.match(verify.all ?? "", /Main partition table CRC mismatch/);
});

test("bad layouts are refused with the partition named", () => {
  assert.throws(() => twoPartitions(16 * MiB), (e: unknown) => e instanceof GptError && /'ESP' does not fit on a disk of 16777216 bytes; give a larger size/.test(e.message));
  assert.throws(() => gptLayout(guid("d"), 4 * MiB + 1, []), /not a multiple of 512/);
  assert.throws(() => gptLayout(guid("d"), 8 * MiB, [{ label: "x".repeat(37), type: PARTITION_TYPES.var, guid: guid("x") }]), /longer than 36 characters/);
  assert.throws(() => gptLayout(guid("d"), 8 * MiB, [{ label: "a", type: PARTITION_TYPES.var, guid: guid("a") }, { label: "b", type: PARTITION_TYPES.var, guid: guid("b"), size: MiB }]), /'a' has no size; only the last one takes the rest/);
});

test("parseGpt reads back what gptLayout wrote, and refuses a damaged table", () => {
  const layout = twoPartitions(64 * MiB);
  const read = parseGpt(layout.head);
  assert.equal(read.diskGuid, guid("disk"));
  assert.deepEqual(
    read.partitions,
    layout.partitions.map(({ label, type, guid: g, offset, size }) => ({ label, type, guid: g, offset, size })),
  );
  const damaged = Buffer.from(layout.head);
  damaged.writeUInt8(damaged.readUInt8(1024 + 41) ^ 0x10, 1024 + 41);
  assert.throws(() => parseGpt(damaged), /entry array's CRC does not match/);
  const header = Buffer.from(layout.head);
  header.writeUInt8(header.readUInt8(512 + 40) ^ 0x01, 512 + 40);
  assert.throws(() => parseGpt(header), /header's CRC does not match/);
  assert.throws(() => parseGpt(Buffer.alloc(34 * 512)), /no GPT/);
});

test("upgrade plans: the new version gets its tries, the newest good entry stays as fallback, the rest goes", () => {
  assert.deepEqual(planUpgrade(["bronze-0.1.0.efi"], "0.2.0", 3), { write: "bronze-0.2.0+3.efi", fallback: { file: "bronze-0.1.0.efi", version: "0.1.0" }, remove: [] });
  const plan = planUpgrade(["bronze-0.9.0.efi", "bronze-0.10.0.efi", "bronze-0.11.0+0-3.efi", "bronze-0.12.0+1-2.efi", "loader.txt"], "0.13.0", 2);
  assert.equal(plan.fallback.file, "bronze-0.10.0.efi", "0.10 is newer than 0.9; entries still on trial or bad are not fallbacks");
  assert.deepEqual(plan.remove, ["bronze-0.9.0.efi", "bronze-0.11.0+0-3.efi", "bronze-0.12.0+1-2.efi"]);
  assert.throws(() => planUpgrade(["bronze-0.1.0.efi"], "0.1.0", 3), /version 0\.1\.0 is on the disk already/);
  assert.throws(() => planUpgrade(["bronze-0.2.0+1.efi"], "0.3.0", 3), /no boot entry known to be good/);
  assert.deepEqual(parseEntry("bronze-1.2.3-rc.1+2-1.efi"), { file: "bronze-1.2.3-rc.1+2-1.efi", version: "1.2.3-rc.1", counter: { left: 2, done: 1 } });
  assert.ok(compareVersions("1.10.0", "1.9.9") > 0);
  assert.equal(compareVersions("1.2.3", "1.2.3"), 0);
});
