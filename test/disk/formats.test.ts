import assert from "node:assert/strict";
import { test } from "node:test";
import { vhdFooter, vhdGeometry, withDerivedCid } from "../../src/disk/formats.ts";

const GUID = "6bcd8a9d-f749-5614-808d-0b2f113f82af";

// qemu-img create -f vpc, for the same sizes, records one cylinder more: it rounds the size up to the geometry
test("VHD geometry follows the specification's table (qemu-img's, less the cylinder it rounds up)", () => {
  assert.deepEqual(vhdGeometry(1 << 30), { cylinders: 2080, heads: 16, sectors: 63 });
  assert.deepEqual(vhdGeometry(256 << 20), { cylinders: 520, heads: 16, sectors: 63 });
  assert.deepEqual(vhdGeometry(20 << 20), { cylinders: 602, heads: 4, sectors: 17 });
  assert.deepEqual(vhdGeometry(200 * 2 ** 30), { cylinders: 65535, heads: 16, sectors: 255 });
});

test("a fixed VHD footer: cookie, fixed type, sizes, the epoch since 2000, a checksum over the rest; a size CHS cannot express gets the largest geometry", () => {
  const epoch = 1_796_156_853;
  const f = vhdFooter(1 << 30, epoch, GUID);
  assert.equal(f.length, 512);
  assert.equal(f.subarray(0, 8).toString("latin1"), "conectix");
  assert.equal(f.readUInt32BE(60), 2, "fixed disk");
  assert.equal(f.readBigUInt64BE(16), 0xffffffffffffffffn, "no dynamic header");
  assert.equal(f.readBigUInt64BE(48), BigInt(1 << 30));
  assert.equal(f.readUInt32BE(24), epoch - Date.UTC(2000, 0, 1) / 1000);
  // 1 GiB is not a whole number of 2080 x 16 x 63 sectors
  assert.deepEqual([f.readUInt16BE(56), f.readUInt8(58), f.readUInt8(59)], [65535, 16, 255]);
  const exact = vhdFooter(2080 * 16 * 63 * 512, epoch, GUID);
  assert.deepEqual([exact.readUInt16BE(56), exact.readUInt8(58), exact.readUInt8(59)], [2080, 16, 63]);
  const unchecked = Buffer.from(f);
  unchecked.writeUInt32BE(0, 64);
  const sum = unchecked.reduce((a, b) => a + b, 0);
  assert.equal(f.readUInt32BE(64), ~sum >>> 0);
  assert.deepEqual(vhdFooter(1 << 30, epoch, GUID), f, "pure");
  assert.notDeepEqual(vhdFooter(1 << 30, epoch + 1, GUID), f);
});

test("a VMDK's CID becomes eight digits of the seed whatever qemu-img printed (it drops leading zeros, it may rewrite it shorter over a longer one): the same bytes, the same offsets", () => {
  // as qemu-img lays it out: a header giving the descriptor's area (sector 1, 2 sectors), its text, zeros, the grains
  const vmdk = (area: string) => {
    const header = Buffer.alloc(512);
    header.write("KDMV", "latin1");
    header.writeBigUInt64LE(1n, 28);
    header.writeBigUInt64LE(2n, 36);
    return Buffer.concat([header, Buffer.from(`${area}${"\0".repeat(1024 - area.length)}grain`, "latin1")]);
  };
  const text = (cid: string) => `# Disk DescriptorFile\nversion=1\nCID=${cid}\nparentCID=ffffffff\n`;
  const inputs = [vmdk(text("718277ef")), vmdk(text("5a3c1")), vmdk(text("7")), vmdk(`${text("5a3c1")}\0ff\n`)];
  const outs = inputs.map((input) => withDerivedCid(input, GUID));
  for (const [i, out] of outs.entries()) {
    assert.equal(out.length, inputs[i]!.length, "no offset moves");
    assert.deepEqual(out, outs[0], `input ${i}: the same bytes as the first`);
  }
  assert.match(outs[0]!.toString("latin1"), new RegExp(`\\nCID=${GUID.replace(/-/g, "").slice(0, 8)}\\nparentCID=ffffffff\\n\\0+grain$`));
  assert.match(withDerivedCid(vmdk(text("abc")), "0123-4567").toString("latin1"), /\nCID=10123456\n/, "no leading zero");
  assert.throws(() => withDerivedCid(vmdk(`${text("7")}${"#".repeat(1024 - text("7").length)}`), GUID), /fills its area/);
  assert.throws(() => withDerivedCid(vmdk("no descriptor"), GUID), /no CID line/);
  assert.throws(() => withDerivedCid(Buffer.from("KDMV\nCID=7\n", "latin1"), GUID), /no VMDK/);
});
