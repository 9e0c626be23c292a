import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { zstdCompressSync } from "node:zlib";
import { execa } from "execa";
import { gnuBuildId, kernelPayload, parseBzImage } from "../../src/repro/bzimage.ts";
import { compareBytes, compareKernelImages, compareSignedModules, firstDifference } from "../../src/repro/compare.ts";
import { compareTrees } from "../../src/repro/trees.ts";
import { makeSigningKey, signModule } from "../helpers/modsign.ts";
import { tempDir } from "../helpers/tmp.ts";

/** A bzImage as the boot protocol lays it out: setup (2 sectors), some decompressor bytes, the zstd payload and its size. */
function bzImage(kernel: Buffer): Buffer {
  const setup = Buffer.alloc(1024);
  setup[0x1f1] = 1;
  setup.write("HdrS", 0x202, "latin1");
  setup.writeUInt16LE(0x020f, 0x206);
  const decompressor = Buffer.alloc(0x80, 0x90);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(kernel.length);
  const payload = Buffer.concat([zstdCompressSync(kernel), size]);
  setup.writeUInt32LE(decompressor.length, 0x248);
  setup.writeUInt32LE(payload.length, 0x24c);
  return Buffer.concat([setup, decompressor, payload, Buffer.alloc(64, 0xcc)]);
}

const body = Buffer.from("\x7fELF kernel text and data ".repeat(4000));
const kernelWith = (cert: Buffer, tail = body) => Buffer.concat([body, cert, tail]);

test("firstDifference finds the first differing byte, or the end of the shorter buffer", () => {
  const a = randomBytes(200_000);
  const b = Buffer.from(a);
  assert.equal(firstDifference(a, b), undefined);
  b[150_001] = a[150_001]! ^ 1;
  assert.equal(firstDifference(a, b), 150_001);
  assert.equal(firstDifference(a, a.subarray(0, 1000)), 1000);
  assert.match((compareBytes(a, b) as { detail: string }).detail, /offset 150001 \(0x249f1\)/);
});

test("a bzImage's payload is found by the setup header and decompressed", () => {
  const kernel = kernelWith(randomBytes(1400));
  const image = bzImage(kernel);
  assert.deepEqual(parseBzImage(image), { setupLength: 1024, payloadOffset: 1024 + 0x80, payloadLength: image.length - 1024 - 0x80 - 64, compression: "zstd" });
  assert.ok(kernelPayload(image).equals(kernel));
  assert.throws(() => parseBzImage(Buffer.alloc(4096)), /not an x86 bzImage/);
});

test("kernels that differ only in their certificate are equivalent; any other byte is named", () => {
  const [certA, certB] = [randomBytes(1400), randomBytes(1400)];
  const verdict = compareKernelImages(bzImage(kernelWith(certA)), certA, bzImage(kernelWith(certB)), certB);
  assert.equal(verdict.status, "equivalent");
  assert.match((verdict as { how: string }).how, new RegExp(`certificate masked \\(1400 bytes at 0x${body.length.toString(16)}\\)`));

  const changed = Buffer.from(body);
  changed[10] = body[10]! ^ 0xff;
  const at = body.length + 1400 + 10;
  const different = compareKernelImages(bzImage(kernelWith(certA)), certA, bzImage(kernelWith(certB, changed)), certB);
  assert.equal(different.status, "different");
  assert.match((different as { detail: string }).detail, new RegExp(`offset ${at} `));

  const shorter = randomBytes(1399);
  assert.equal(compareKernelImages(bzImage(kernelWith(certA)), certA, bzImage(kernelWith(shorter)), shorter).status, "different");
  assert.throws(() => compareKernelImages(bzImage(body), certA, bzImage(kernelWith(certB)), certB), /does not embed/);
});

test("signed modules compare equal with their signatures stripped, and differ when the content does", async () => {
  const dir = await tempDir();
  const [one, two] = [await makeSigningKey(dir, "one"), await makeSigningKey(dir, "two")];
  const content = Buffer.from("\x7fELF module ".repeat(300));
  const verdict = compareSignedModules(await signModule(content, one, dir), await signModule(content, two, dir));
  assert.equal(verdict.status, "equivalent");
  const other = Buffer.from(content);
  other[7] = 0x21;
  const different = compareSignedModules(await signModule(content, one, dir), await signModule(other, two, dir));
  assert.match((different as { detail: string }).detail, /with signatures stripped, differs at offset 7 /);
  assert.equal(compareSignedModules(content, await signModule(content, two, dir)).status, "different");
});

test("tree comparison names missing files, mode and link differences, and each differing file", async () => {
  const root = await tempDir();
  for (const side of ["a", "b"]) {
    await mkdir(join(root, side, "usr", "bin"), { recursive: true });
    await writeFile(join(root, side, "usr", "bin", "tool"), "same");
    await writeFile(join(root, side, "usr", "bin", "data"), side === "a" ? "built at 10:00" : "built at 11:00");
    await writeFile(join(root, side, "mode"), "x");
    await chmod(join(root, side, "mode"), side === "a" ? 0o755 : 0o750);
    await symlink(side === "a" ? "tool" : "data", join(root, side, "usr", "bin", "link"));
  }
  await writeFile(join(root, "b", "extra"), "");
  const verdicts = Object.fromEntries((await compareTrees(join(root, "a"), join(root, "b"))).map((f) => [f.path, f.verdict]));
  assert.deepEqual(verdicts["usr/bin/tool"], { status: "identical" });
  assert.match((verdicts["usr/bin/data"] as { detail: string }).detail, /offset 10 /);
  assert.match((verdicts["mode"] as { detail: string }).detail, /file 755 vs file 750/);
  assert.match((verdicts["usr/bin/link"] as { detail: string }).detail, /links to tool vs data/);
  assert.match((verdicts["extra"] as { detail: string }).detail, /only in the second build/);
});

test("the GNU build ID of an ELF file is found where readelf says it is", async () => {
  const elf = await readFile("/bin/true");
  const id = gnuBuildId(elf);
  assert.ok(id, "/bin/true has a build ID");
  const { stdout } = await execa("readelf", ["-n", "/bin/true"]);
  assert.equal(elf.subarray(id.offset, id.offset + id.length).toString("hex"), /Build ID: ([0-9a-f]+)/.exec(stdout)?.[1]);
  assert.equal(gnuBuildId(Buffer.from("not an ELF file at all, but long enough to have a header ......")), undefined);
});
