import assert from "node:assert/strict";
import { readFile, readlink, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { writeCpio, type CpioEntry } from "../../src/initramfs/cpio.ts";
import { tempDir } from "../helpers/tmp.ts";

const EPOCH = 1_700_000_000;
const entries: CpioEntry[] = [
  { type: "file", path: "rootfs.sqsh", mode: 0o644, data: Buffer.from("squash") },
  { type: "dir", path: "dev", mode: 0o755 },
  { type: "file", path: "init", mode: 0o755, data: Buffer.from("#!/bin/true\n") },
  { type: "symlink", path: "sbin", target: "usr/sbin" },
  { type: "char", path: "dev/console", mode: 0o600, major: 5, minor: 1 },
  { type: "file", path: "empty", mode: 0o644, data: new Uint8Array() },
];

test("GNU cpio lists the entries sorted bytewise, owned by root, dated SOURCE_DATE_EPOCH", async () => {
  const archive = writeCpio(entries, EPOCH);
  const listing = await execa("cpio", ["-itv", "--quiet"], { input: archive, env: { TZ: "UTC", LC_ALL: "C" } });
  const lines = listing.stdout.trim().split("\n");
  assert.deepEqual(
    lines.map((l) => l.replace(/^.*\s2023 /, "")),
    ["dev", "dev/console", "empty", "init", "rootfs.sqsh", "sbin -> usr/sbin"],
  );
  for (const line of lines) {
    const [, , owner, group] = line.split(/\s+/);
    assert.equal(owner, "root");
    assert.equal(group, "root");
    assert.match(line, /Nov 14\s+2023/);
  }
  assert.match(lines[1] ?? "", /^crw-------.*\s5,\s+1\s/);
});

test("GNU cpio extracts the same bytes, modes and link targets", async () => {
  const dir = await tempDir();
  await writeFile(join(dir, "a.cpio"), writeCpio(entries.filter((e) => e.type !== "char"), EPOCH));
  await execa("sh", ["-c", "cpio -idm --quiet --no-absolute-filenames < a.cpio"], { cwd: dir });
  assert.equal(await readFile(join(dir, "init"), "utf8"), "#!/bin/true\n");
  assert.equal(await readFile(join(dir, "rootfs.sqsh"), "utf8"), "squash");
  assert.equal((await stat(join(dir, "init"))).mode & 0o777, 0o755);
  assert.equal((await stat(join(dir, "empty"))).size, 0);
  assert.equal(await readlink(join(dir, "sbin")), "usr/sbin");
  assert.equal((await stat(join(dir, "init"))).mtimeMs, EPOCH * 1000);
});

test("the archive is a pure function of its entries: order of input does not matter", () => {
  const a = writeCpio(entries, EPOCH);
  const b = writeCpio([...entries].reverse(), EPOCH);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, writeCpio(entries, EPOCH + 1));
});

test("every header and every data part is 4-byte aligned and the archive ends with the trailer", () => {
  const archive = writeCpio(entries, EPOCH);
  assert.equal(archive.length % 4, 0);
  assert.ok(archive.subarray(archive.length - 140).toString("latin1").includes("TRAILER!!!"));
  let offset = 0;
  let count = 0;
  for (;;) {
    assert.equal(archive.toString("ascii", offset, offset + 6), "070701", `header magic at offset ${offset}`);
    const field = (i: number): number => parseInt(archive.toString("ascii", offset + 6 + i * 8, offset + 14 + i * 8), 16);
    const size = field(6);
    const nameSize = field(11);
    const name = archive.toString("latin1", offset + 110, offset + 110 + nameSize - 1);
    assert.equal(field(2), 0, "uid");
    assert.equal(field(3), 0, "gid");
    offset += 110 + nameSize;
    offset += (4 - (offset % 4)) % 4;
    offset += size;
    offset += (4 - (offset % 4)) % 4;
    if (name === "TRAILER!!!") break;
    count++;
  }
  assert.equal(count, entries.length);
  assert.equal(offset, archive.length);
});

test("paths that escape the archive or repeat are refused", () => {
  assert.throws(() => writeCpio([{ type: "dir", path: "/abs", mode: 0o755 }], EPOCH), /relative/);
  assert.throws(() => writeCpio([{ type: "dir", path: "a/../../b", mode: 0o755 }], EPOCH), /inside the archive/);
  assert.throws(
    () => writeCpio([{ type: "dir", path: "a", mode: 0o755 }, { type: "dir", path: "a", mode: 0o755 }], EPOCH),
    /appears twice/,
  );
});
