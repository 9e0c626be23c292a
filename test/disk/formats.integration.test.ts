import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { after, before, test } from "node:test";
import { execa } from "execa";
import { bronze } from "../helpers/cli.ts";
import { builtImage } from "../helpers/build.ts";
import { PROJECT_ROOT } from "../helpers/tmp.ts";

// bronze image disk --format: each format read back by an independent tool (qemu-img info, check and
// compare, zstd, xz, tar), the same bytes twice, and the qcow2 booted.

const OUT = join(PROJECT_ROOT, "_out", "minimal");
const SIZE = "256M";
let dir = "";
let raw = "";

before(async () => {
  await builtImage("minimal");
  dir = await mkdtemp(join(tmpdir(), "bronze-formats-test-"));
  raw = await disk("raw", "disk.raw");
}, { timeout: 30 * 60_000 });

after(() => rm(dir, { recursive: true, force: true }));

async function disk(format: string, name: string, env: Record<string, string> = {}): Promise<string> {
  const out = join(dir, name);
  const result = await bronze(["image", "disk", "--from", join(OUT, "installer"), "--out", out, "--size", SIZE, "--format", format], env);
  assert.equal(result.exitCode, 0, String(result.all));
  assert.match(String(result.stdout), new RegExp(`^disk ${out}: ${format.replace(".", "\\.")}, \\d+ bytes \\(a disk of ${256 << 20}\\)`));
  return out;
}

/** qemu-img compare: the same guest-visible content. */
async function sameContent(image: string[], what: string): Promise<void> {
  const compared = await execa("qemu-img", ["compare", "--image-opts", `driver=raw,file.filename=${raw}`, ...image], { reject: false, all: true });
  assert.equal(compared.exitCode, 0, `${what}: ${compared.all}`);
  assert.match(compared.all, /Images are identical/);
}

test("qcow2: qemu-img reads a qcow2 of the disk's size, checks it clean, finds the same content; it boots; the same bytes again", async () => {
  const qcow2 = await disk("qcow2", "a.qcow2");
  const info = JSON.parse((await execa("qemu-img", ["info", "--output=json", qcow2])).stdout) as { format: string; "virtual-size": number };
  assert.deepEqual([info.format, info["virtual-size"]], ["qcow2", 256 << 20]);
  assert.match((await execa("qemu-img", ["check", qcow2])).stdout, /No errors were found on the image/);
  await sameContent([`driver=qcow2,file.filename=${qcow2}`], "qcow2");
  assert.deepEqual(await readFile(await disk("qcow2", "b.qcow2", { TZ: "Asia/Kolkata" })), await readFile(qcow2));
  const booted = join(dir, "booted.qcow2");
  await copyFile(qcow2, booted);
  const result = await bronze(["boot", booted, "-q"]);
  assert.equal(result.exitCode, 0, String(result.all));
  assert.match(String(result.stdout), /bronze: boot ok in [\d.]+ s: root=ro var=rw varfs=ext4/);
});

test("vhd: a fixed VHD (footer checksum, geometry telling readers to take its size) that qemu-img reads as the same disk; the same bytes again; a size not in whole MiB is refused", async () => {
  const vhd = await disk("vhd", "a.vhd");
  const data = await readFile(vhd);
  assert.equal(data.length, (256 << 20) + 512);
  const footer = data.subarray(data.length - 512);
  assert.equal(footer.subarray(0, 8).toString("latin1"), "conectix");
  const zeroed = Buffer.from(footer);
  zeroed.writeUInt32BE(0, 64);
  assert.equal(footer.readUInt32BE(64), ~zeroed.reduce((a, b) => a + b, 0) >>> 0, "footer checksum");
  // without force_size_calc: qemu takes the size from the footer only for the largest geometry, which it has
  const info = JSON.parse((await execa("qemu-img", ["info", "--output=json", "-f", "vpc", vhd])).stdout) as { format: string; "virtual-size": number };
  assert.deepEqual([info.format, info["virtual-size"]], ["vpc", 256 << 20]);
  await sameContent([`driver=vpc,file.filename=${vhd}`], "vhd");
  assert.deepEqual(await readFile(await disk("vhd", "b.vhd", { TZ: "America/Lima" })), data);
  const odd = await bronze(["image", "disk", "--from", join(OUT, "installer"), "--out", join(dir, "odd.vhd"), "--size", `${(256 << 20) + 4096}`, "--format", "vhd"]);
  assert.equal(odd.exitCode, 2, String(odd.all));
  assert.match(String(odd.stderr), /a VHD \(Azure\) disk is a whole number of MiB; \d+ bytes is not: give --size in MiB/);
});

test("raw.zst, raw.xz and gcp: zstd, xz and tar read them back to the raw disk; GCP's archive holds disk.raw alone (GNU format); the same bytes again", async () => {
  const expected = await readFile(raw);
  for (const [format, name, test, unpack] of [
    ["raw.zst", "disk.raw.zst", ["zstd", "-t", "-q"], ["zstd", "-d", "-q", "-c"]],
    ["raw.xz", "disk.raw.xz", ["xz", "-t"], ["xz", "-d", "-c"]],
  ] as const) {
    const file = await disk(format, name);
    await execa(test[0], [...test.slice(1), file]);
    const unpacked = (await execa(unpack[0], [...unpack.slice(1), file], { encoding: "buffer", maxBuffer: 512 << 20 })).stdout;
    assert.ok(Buffer.from(unpacked).equals(expected), `${format} unpacks to the raw disk`);
    assert.deepEqual(await readFile(await disk(format, `again-${name}`, { TZ: "Europe/Berlin" })), await readFile(file), `${format}: reproducible`);
  }
  const gcp = await disk("gcp", "disk.raw.tar.gz");
  assert.equal((await execa("tar", ["-tzf", gcp])).stdout, "disk.raw");
  const listing = (await execa("tar", ["-tvzf", gcp])).stdout;
  assert.match(listing, /^-rw-r--r-- 0\/0 +268435456 /);
  const extracted = join(dir, "gcp");
  await execa("mkdir", [extracted]);
  await execa("tar", ["-xzf", gcp, "-C", extracted]);
  assert.ok((await readFile(join(extracted, "disk.raw"))).equals(expected), "GCP's disk.raw is the raw disk");
  // the GNU header magic (old GNU format: sparse files as Compute Engine reads them)
  assert.equal(gunzipSync(await readFile(gcp)).subarray(257, 265).toString("latin1"), "ustar  \0");
  assert.deepEqual(await readFile(await disk("gcp", "again.tar.gz", { TZ: "Europe/Berlin" })), await readFile(gcp), "gcp: reproducible");
});

test("ova: the OVF descriptor first, then a stream-optimized VMDK that qemu-img checks clean and reads as the disk; the descriptor parses and names the disk's file, size and capacity; the same bytes again", async () => {
  const ova = await disk("ova", "disk.ova");
  const listing = (await execa("tar", ["-tf", ova])).stdout.split("\n");
  assert.deepEqual(listing, ["bronze.ovf", "disk1.vmdk"]);
  const unpacked = join(dir, "ova");
  await execa("mkdir", [unpacked]);
  await execa("tar", ["-xf", ova, "-C", unpacked]);
  const vmdk = join(unpacked, "disk1.vmdk");
  const info = JSON.parse((await execa("qemu-img", ["info", "--output=json", vmdk])).stdout) as { format: string; "virtual-size": number; "format-specific": { data: { "create-type": string } } };
  assert.deepEqual([info.format, info["virtual-size"], info["format-specific"].data["create-type"]], ["vmdk", 256 << 20, "streamOptimized"]);
  assert.match((await execa("qemu-img", ["check", vmdk])).stdout, /No errors were found on the image/);
  await sameContent([`driver=vmdk,file.filename=${vmdk}`], "ova's vmdk");
  // an XML parser bronze did not write: Python's
  const parsed = await execa("python3", ["-c", [
    "import sys, xml.etree.ElementTree as ET",
    "o = '{http://schemas.dmtf.org/ovf/envelope/1}'",
    "r = ET.parse(sys.argv[1]).getroot()",
    "f = r.find(o + 'References/' + o + 'File'); d = r.find(o + 'DiskSection/' + o + 'Disk')",
    "print(f.get(o + 'href'), f.get(o + 'size'), d.get(o + 'capacity'), d.get(o + 'format').split('#')[1])",
  ].join("\n"), join(unpacked, "bronze.ovf")]);
  const { size } = await stat(vmdk);
  assert.equal(parsed.stdout, `disk1.vmdk ${size} ${256 << 20} streamOptimized`);
  assert.match(await readFile(join(unpacked, "bronze.ovf"), "utf8"), /vmw:key="firmware" vmw:value="efi"/);
  assert.deepEqual(await readFile(await disk("ova", "again.ova", { TZ: "Australia/Eucla" })), await readFile(ova), "ova: reproducible (qemu-img's random CID replaced)");
});
