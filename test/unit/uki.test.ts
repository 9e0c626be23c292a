import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { STUB_PATH } from "../../src/core/tools.ts";
import { appendSections, parsePe, PeFormatError } from "../../src/uki/pe.ts";
import { assembleUki, readUkiSections } from "../../src/uki/uki.ts";
import { tempDir } from "../helpers/tmp.ts";

// A real PE with a SizeOfImage stands in for the kernel: systemd-boot itself.
const FAKE_KERNEL = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
const SNAKEOIL_KEY = "/usr/share/ovmf/PkKek-1-snakeoil.key";
const SNAKEOIL_CERT = "/usr/share/ovmf/PkKek-1-snakeoil.pem";

async function inputs() {
  return {
    stub: await readFile(STUB_PATH),
    linux: await readFile(FAKE_KERNEL),
    initrd: Buffer.from("initrd bytes".repeat(1000)),
    osRelease: "ID=bronze\nVERSION_ID=0.1.0\n",
    cmdline: "console=ttyS0 module.sig_enforce=1",
    uname: "6.1.0-test",
  };
}

interface ObjdumpSection {
  name: string;
  size: number;
  vma: number;
  fileOffset: number;
}

async function objdumpSections(path: string): Promise<ObjdumpSection[]> {
  const { stdout } = await execa("objdump", ["-h", path]);
  return [...stdout.matchAll(/^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)/gm)].map((m) => ({
    name: m[1] ?? "",
    size: parseInt(m[2] ?? "", 16),
    vma: parseInt(m[3] ?? "", 16),
    fileOffset: parseInt(m[4] ?? "", 16),
  }));
}

test("objdump reads the UKI's sections in order, aligned, after the stub's own", async () => {
  const input = await inputs();
  const dir = await tempDir();
  const path = join(dir, "uki.efi");
  await writeFile(path, assembleUki(input));
  const stub = parsePe(input.stub);
  const uki = parsePe(await readFile(path));
  const names = uki.sections.map((s) => s.name);
  assert.deepEqual(names.slice(0, stub.sections.length), stub.sections.map((s) => s.name));
  assert.deepEqual(names.slice(stub.sections.length), [".osrel", ".cmdline", ".uname", ".linux", ".initrd"]);
  assert.ok(names.includes(".sbat"), "the stub's .sbat is kept");

  const dumped = await objdumpSections(path);
  assert.deepEqual(dumped.map((s) => s.name), names);
  const imageBase = (await execa("objdump", ["-p", path])).stdout.match(/ImageBase\s+([0-9a-f]+)/)?.[1] ?? "0";
  let previousEnd = 0;
  for (const section of uki.sections) {
    const fromObjdump = dumped.find((d) => d.name === section.name);
    assert.ok(fromObjdump);
    assert.equal(fromObjdump.vma - parseInt(imageBase, 16), section.virtualAddress, `${section.name} VMA`);
    assert.equal(fromObjdump.fileOffset, section.pointerToRawData, `${section.name} file offset`);
    if (!stub.sections.some((s) => s.name === section.name)) {
      assert.equal(section.pointerToRawData % uki.fileAlignment, 0, `${section.name} file alignment`);
      assert.equal(section.virtualAddress % uki.sectionAlignment, 0, `${section.name} section alignment`);
    }
    assert.ok(section.virtualAddress >= previousEnd, `${section.name} does not overlap the previous section`);
    previousEnd = section.virtualAddress + section.virtualSize;
  }
  assert.equal(uki.sizeOfImage, Math.ceil(previousEnd / uki.sectionAlignment) * uki.sectionAlignment);
  assert.equal(uki.sections.find((s) => s.name === ".linux")?.virtualSize, parsePe(input.linux).sizeOfImage);
});

test("section contents read back equal the inputs; .cmdline ends with NUL", async () => {
  const input = await inputs();
  const sections = new Map(readUkiSections(assembleUki(input)).map((s) => [s.name, Buffer.from(s.data)]));
  assert.equal(sections.get(".osrel")?.toString(), input.osRelease);
  assert.equal(sections.get(".cmdline")?.toString(), `${input.cmdline}\0`);
  assert.equal(sections.get(".uname")?.toString(), input.uname);
  assert.ok(sections.get(".initrd")?.equals(input.initrd));
  assert.ok(sections.get(".linux")?.subarray(0, input.linux.length).equals(input.linux));
});

test("sbverify parses the UKI as a valid, unsigned PE image", async () => {
  const dir = await tempDir();
  const path = join(dir, "uki.efi");
  await writeFile(path, assembleUki(await inputs()));
  const result = await execa("sbverify", ["--list", path], { reject: false, all: true });
  assert.match(String(result.all), /No signature table present/);
  assert.doesNotMatch(String(result.all), /Invalid|failed to|error/i);
});

test("the same inputs give the same bytes; CheckSum is 0 and TimeDateStamp is the stub's", async () => {
  const input = await inputs();
  const a = Buffer.from(assembleUki(input));
  assert.ok(a.equals(Buffer.from(assembleUki(await inputs()))));
  const peOffset = a.readUInt32LE(0x3c);
  assert.equal(a.readUInt32LE(peOffset + 24 + 64), 0, "CheckSum");
  assert.equal(a.readUInt32LE(peOffset + 8), input.stub.readUInt32LE(peOffset + 8), "TimeDateStamp");
});

test("a signed stub is refused", async () => {
  const dir = await tempDir();
  const key = join(dir, "key.pem");
  await execa("openssl", ["rsa", "-in", SNAKEOIL_KEY, "-passin", "pass:snakeoil", "-out", key]);
  await execa("sbsign", ["--key", key, "--cert", SNAKEOIL_CERT, "--output", join(dir, "signed.stub"), STUB_PATH]);
  const input = { ...(await inputs()), stub: await readFile(join(dir, "signed.stub")) };
  assert.throws(() => assembleUki(input), (e: unknown) => e instanceof PeFormatError && /stub is signed/.test(e.message));
});

test("a kernel that is not an EFI stub image is refused", async () => {
  const input = { ...(await inputs()), linux: Buffer.from("\x7fELF not a PE kernel") };
  assert.throws(() => assembleUki(input), /kernel is not an EFI stub image \(CONFIG_EFI_STUB\)/);
});

test("bad section names and duplicates are refused", async () => {
  const { stub } = await inputs();
  const data = Buffer.from("x");
  assert.throws(() => appendSections(stub, [{ name: ".toolongname", data }]), /at most 8 characters/);
  assert.throws(() => appendSections(stub, [{ name: "nodot", data }]), /must start with '\.'/);
  assert.throws(() => appendSections(stub, [{ name: ".sbat", data }]), /section '\.sbat' already exists/);
  assert.throws(() => appendSections(stub, [{ name: ".a", data }, { name: ".a", data }]), /section '\.a' already exists/);
});
