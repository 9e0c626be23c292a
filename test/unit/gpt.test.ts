import assert from "node:assert/strict";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { derivedGuid } from "../../src/core/guid.ts";
import { GptError, gptLayout, PARTITION_TYPES, type GptLayout } from "../../src/disk/gpt.ts";
import { tempDir } from "../helpers/tmp.ts";

// Our GPT writer read back by util-linux's sfdisk and checked by gdisk's sgdisk -v.

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
