import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { DEFAULT_ARCH } from "../../src/core/arch.ts";
import { appendSections, parsePe, PeFormatError, readSection } from "../../src/uki/pe.ts";
import { assembleUki, readUkiSections } from "../../src/uki/uki.ts";
import { tempDir } from "../helpers/tmp.ts";

// No kernel is built here: a real PE with a SizeOfImage, systemd-boot itself, stands in for it.
const FAKE_KERNEL = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
const SNAKEOIL_KEY = "/usr/share/ovmf/PkKek-1-snakeoil.key";
const SNAKEOIL_CERT = "/usr/share/ovmf/PkKek-1-snakeoil.pem";
const UKI_SECTIONS = [".osrel", ".cmdline", ".uname", ".linux", ".initrd"];

// header offsets for patching test images, independent of src/uki/pe.ts
const PE_OFFSET = 0x3c; // in the DOS header; the others count from the "PE\0\0" signature
const PE_MACHINE = 4;
const PE_TIME_DATE_STAMP = 8;
const PE_SIZE_OF_OPTIONAL_HEADER = 20;
const PE_OPTIONAL_HEADER = 24;
const OPT_SIZE_OF_HEADERS = 60;
const SECTION_HEADER_SIZE = 40;

const dir = await tempDir();

async function inputs() {
  return {
    stub: await readFile(DEFAULT_ARCH.stub),
    linux: await readFile(FAKE_KERNEL),
    initrd: Buffer.from("initrd bytes".repeat(1000)),
    osRelease: "ID=bronze\nVERSION_ID=0.1.0\n",
    cmdline: "console=ttyS0 module.sig_enforce=1",
    uname: "6.1.0-test",
  };
}

async function writeTemp(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

/** sbsign with the snakeoil key, decrypted for the call only (sbsign cannot take a passphrase). */
async function sbsign(input: string, output: string): Promise<void> {
  const key = join(dir, "snakeoil-decrypted.key");
  try {
    await execa("openssl", ["rsa", "-in", SNAKEOIL_KEY, "-passin", "pass:snakeoil", "-out", key]);
    await execa("sbsign", ["--key", key, "--cert", SNAKEOIL_CERT, "--output", output, input]);
  } finally {
    await rm(key, { force: true });
  }
}

interface ObjdumpSection {
  name: string;
  size: number;
  vma: number;
  fileOffset: number;
  flags: string[];
}

async function objdumpSections(path: string): Promise<ObjdumpSection[]> {
  const { stdout } = await execa("objdump", ["-h", path]);
  const rows = /^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\n\s+(.*)$/gm;
  return [...stdout.matchAll(rows)].map((m) => ({
    name: m[1] ?? "",
    size: parseInt(m[2] ?? "", 16),
    vma: parseInt(m[3] ?? "", 16),
    fileOffset: parseInt(m[4] ?? "", 16),
    flags: (m[5] ?? "").split(/,\s*/),
  }));
}

async function objdumpHeader(path: string): Promise<Map<string, string>> {
  const { stdout } = await execa("objdump", ["-p", path]);
  return new Map([...stdout.matchAll(/^(\w+(?:\/\w+)?)\s+(.+)$/gm)].map((m) => [m[1] ?? "", (m[2] ?? "").trim()]));
}

const hex = (value: string | undefined): number => parseInt(value ?? "NaN", 16);

test("objdump lists the stub's sections, then ours in ukify order, with their sizes, addresses and offsets", async () => {
  const input = await inputs();
  const path = await writeTemp("uki.efi", assembleUki(input));
  const stub = parsePe(input.stub);
  const uki = parsePe(await readFile(path));
  const names = uki.sections.map((s) => s.name);
  assert.deepEqual(names, [...stub.sections.map((s) => s.name), ...UKI_SECTIONS]);
  assert.ok(names.includes(".sbat"), "the stub's .sbat is kept");

  const dumped = await objdumpSections(path);
  assert.deepEqual(dumped.map((s) => s.name), names);
  const imageBase = hex((await objdumpHeader(path)).get("ImageBase"));
  let previousEnd = 0;
  uki.sections.forEach((section, i) => {
    const seen = dumped[i];
    assert.ok(seen);
    assert.equal(seen.vma - imageBase, section.virtualAddress, `${section.name} VMA`);
    assert.equal(seen.fileOffset, section.pointerToRawData, `${section.name} file offset`);
    // BFD shows the raw size, cut to the virtual size when that is smaller
    assert.equal(seen.size, Math.min(section.virtualSize, section.sizeOfRawData), `${section.name} size`);
    assert.ok(section.virtualAddress >= previousEnd, `${section.name} does not overlap the previous section`);
    previousEnd = section.virtualAddress + section.virtualSize;
  });
  for (const section of uki.sections.slice(stub.sections.length)) {
    assert.equal(section.pointerToRawData % uki.fileAlignment, 0, `${section.name} file alignment`);
    assert.equal(section.sizeOfRawData % uki.fileAlignment, 0, `${section.name} raw size alignment`);
    assert.equal(section.virtualAddress % uki.sectionAlignment, 0, `${section.name} section alignment`);
    const flags = dumped.find((d) => d.name === section.name)?.flags ?? [];
    assert.ok(flags.includes("READONLY"), `${section.name} is read-only`);
    assert.ok(flags.includes(section.name === ".linux" ? "CODE" : "DATA"), `${section.name}: ${flags.join(",")}`);
  }
  assert.equal(uki.sizeOfImage, Math.ceil(previousEnd / uki.sectionAlignment) * uki.sectionAlignment);
  const kernelSizeOfImage = parsePe(input.linux).sizeOfImage;
  assert.ok(kernelSizeOfImage > input.linux.length, "the stand-in kernel asks for more memory than its file size");
  assert.equal(uki.sections.find((s) => s.name === ".linux")?.virtualSize, kernelSizeOfImage);
  assert.equal(uki.sections.find((s) => s.name === ".osrel")?.virtualSize, input.osRelease.length);
});

test("optional header: SizeOfInitializedData grows by the new sections, SizeOfCode kept, CheckSum 0, symbol table dropped", async () => {
  const input = await inputs();
  const stubPath = await writeTemp("stub.efi", input.stub);
  const ukiBytes = assembleUki(input);
  const ukiPath = await writeTemp("uki-header.efi", ukiBytes);
  const [before, after] = [await objdumpHeader(stubPath), await objdumpHeader(ukiPath)];
  const added = parsePe(ukiBytes).sections.slice(parsePe(input.stub).sections.length).reduce((sum, s) => sum + s.virtualSize, 0);
  assert.equal(hex(after.get("SizeOfInitializedData")), hex(before.get("SizeOfInitializedData")) + added);
  assert.equal(after.get("SizeOfCode"), before.get("SizeOfCode"));
  assert.equal(hex(after.get("CheckSum")), 0);
  assert.equal(after.get("SizeOfHeaders"), before.get("SizeOfHeaders"));
  assert.equal(after.get("Time/Date"), before.get("Time/Date"));
  // the stub (systemd 252) ends with a COFF symbol table; like ukify we drop it, so .initrd ends the file
  const last = parsePe(ukiBytes).sections.at(-1);
  assert.equal(ukiBytes.length, (last?.pointerToRawData ?? 0) + (last?.sizeOfRawData ?? 0));
  assert.equal((await execa("objdump", ["-t", ukiPath])).stdout.includes("SYMBOL TABLE:\nno symbols"), true);
});

test("bytes a stub holds past its last section and in none (systemd's arm64 stub: its SBAT text) are dropped: the new sections follow the stub's, no bytes between two sections", async () => {
  const input = await inputs();
  // the amd64 stub with its symbol table no longer named as one: what follows its sections is in no section
  const stub = Buffer.from(input.stub);
  const peOffset = stub.readUInt32LE(PE_OFFSET);
  stub.writeUInt32LE(0, peOffset + 12);
  stub.writeUInt32LE(0, peOffset + 16);
  const stubSections = parsePe(stub).sections;
  const stubEnd = Math.max(...stubSections.map((s) => s.pointerToRawData + s.sizeOfRawData));
  assert.ok(stub.length > stubEnd, "the stub holds bytes past its sections");
  const uki = assembleUki({ ...input, stub });
  const sections = [...parsePe(uki).sections].sort((a, b) => a.pointerToRawData - b.pointerToRawData);
  for (let i = 1; i < sections.length; i++) {
    const [before, after] = [sections[i - 1], sections[i]];
    assert.equal(after?.pointerToRawData, (before?.pointerToRawData ?? 0) + (before?.sizeOfRawData ?? 0), `${before?.name} then ${after?.name}`);
  }
  const last = sections.at(-1);
  assert.equal(uki.length, (last?.pointerToRawData ?? 0) + (last?.sizeOfRawData ?? 0));
  const path = await writeTemp("no-gap.efi", uki);
  const sbverify = await execa("sbverify", ["--no-verify", path], { reject: false, all: true });
  assert.doesNotMatch(sbverify.all ?? "", /gap in section table|data remaining/, sbverify.all);
});

test("section contents read back equal the inputs; .cmdline ends with NUL; the stub's sections are untouched", async () => {
  const input = await inputs();
  const uki = assembleUki(input);
  const sections = new Map(readUkiSections(uki).map((s) => [s.name, Buffer.from(s.data)]));
  assert.equal(sections.get(".osrel")?.toString(), input.osRelease);
  assert.equal(sections.get(".cmdline")?.toString(), `${input.cmdline}\0`);
  assert.equal(sections.get(".uname")?.toString(), input.uname);
  assert.ok(sections.get(".initrd")?.equals(input.initrd));
  const linux = sections.get(".linux") ?? Buffer.alloc(0);
  assert.ok(linux.subarray(0, input.linux.length).equals(input.linux));
  assert.ok(linux.subarray(input.linux.length).every((b) => b === 0), "only zero padding after the kernel");
  assert.ok(Buffer.from(readSection(uki, ".uname") ?? []).equals(Buffer.from(input.uname)));
  assert.equal(readSection(uki, ".nothere"), undefined);
  for (const { name, data } of readUkiSections(input.stub)) {
    assert.ok(sections.get(name)?.equals(data), `${name} unchanged`);
  }
});

test("sbverify parses the UKI as a valid unsigned PE; once signed by sbsign, it verifies", async () => {
  const path = await writeTemp("uki-sb.efi", assembleUki(await inputs()));
  const unsigned = await execa("sbverify", ["--list", path], { reject: false, all: true });
  assert.match(String(unsigned.all), /No signature table present/);
  assert.doesNotMatch(String(unsigned.all), /Invalid|failed to|error|warning/i);

  const signed = join(dir, "uki-sb.signed.efi");
  await sbsign(path, signed);
  const verified = await execa("sbverify", ["--cert", SNAKEOIL_CERT, signed], { reject: false, all: true });
  assert.equal(verified.exitCode, 0, String(verified.all));
  assert.match(String(verified.all), /Signature verification OK/);
});

test("the same inputs give the same bytes; TimeDateStamp is the stub's", async () => {
  const input = await inputs();
  assert.ok(Buffer.from(assembleUki(input)).equals(Buffer.from(assembleUki(await inputs()))));

  const stub = Buffer.from(input.stub);
  const timeDateStamp = stub.readUInt32LE(PE_OFFSET) + PE_TIME_DATE_STAMP;
  stub.writeUInt32LE(0x5f5e1000, timeDateStamp);
  const uki = Buffer.from(assembleUki({ ...input, stub }));
  assert.equal(uki.readUInt32LE(timeDateStamp), 0x5f5e1000);
  assert.equal(parsePe(uki).timeDateStamp, 0x5f5e1000);
});

test("a signed stub is refused", async () => {
  const signed = join(dir, "signed.stub");
  await sbsign(DEFAULT_ARCH.stub, signed);
  const input = { ...(await inputs()), stub: await readFile(signed) };
  assert.throws(
    () => assembleUki(input),
    (e: unknown) => e instanceof PeFormatError && /stub is signed/.test(e.message) && /must be unsigned/.test(e.message),
  );
});

test("a kernel that is not a PE32+ EFI stub image, or not for the stub's machine, is refused", async () => {
  const input = await inputs();
  const notEfiStub = /kernel is not an EFI stub image \(CONFIG_EFI_STUB\)/;
  assert.throws(() => assembleUki({ ...input, linux: Buffer.from("\x7fELF not a PE kernel") }), notEfiStub);
  assert.throws(() => assembleUki({ ...input, linux: Buffer.alloc(0) }), notEfiStub);

  const pe32 = Buffer.from(input.linux);
  pe32.writeUInt16LE(0x10b, pe32.readUInt32LE(PE_OFFSET) + PE_OPTIONAL_HEADER);
  assert.throws(() => parsePe(pe32), (e: unknown) => e instanceof PeFormatError && /only PE32\+ images are supported.*PE32 \(32-bit\)/.test(e.message));
  assert.throws(() => assembleUki({ ...input, linux: pe32 }), notEfiStub);

  const arm64 = Buffer.from(input.linux);
  arm64.writeUInt16LE(0xaa64, arm64.readUInt32LE(PE_OFFSET) + PE_MACHINE);
  assert.throws(() => assembleUki({ ...input, linux: arm64 }), /kernel machine 0xaa64 does not match the stub's 0x8664/);
});

test("bad section names and duplicates are refused", async () => {
  const { stub } = await inputs();
  const data = Buffer.from("x");
  const refused = (name: string, message: RegExp) =>
    assert.throws(() => appendSections(stub, [{ name, data }]), (e: unknown) => e instanceof PeFormatError && message.test(e.message));
  refused(".toolongname", /longer than 8 bytes/);
  refused("nodot", /must start with '\.'/);
  refused(".tab\t", /not printable ASCII/);
  refused(".sbat", /section '\.sbat' already exists/);
  assert.throws(() => appendSections(stub, [{ name: ".a", data }, { name: ".a", data }]), /section '\.a' already exists/);
  assert.equal(parsePe(appendSections(stub, [{ name: ".eight_c", data }])).sections.at(-1)?.name, ".eight_c");
});

test("section headers must fit before the first section's data; SizeOfHeaders grows to FileAlignment like ukify", async () => {
  const { stub } = await inputs();
  const peOffset = stub.readUInt32LE(PE_OFFSET);
  const info = parsePe(stub);
  const optionalHeaderSize = stub.readUInt16LE(peOffset + PE_SIZE_OF_OPTIONAL_HEADER);
  const tableEnd = peOffset + PE_OPTIONAL_HEADER + optionalHeaderSize + info.sections.length * SECTION_HEADER_SIZE;
  const free = Math.floor((info.sizeOfHeaders - tableEnd) / SECTION_HEADER_SIZE);
  const sections = (count: number) => Array.from({ length: count }, (_, i) => ({ name: `.s${i}`, data: Buffer.from([i]) }));
  assert.equal(parsePe(appendSections(stub, sections(free))).sections.length, info.sections.length + free);
  assert.throws(() => appendSections(stub, sections(free + 1)), (e: unknown) => e instanceof PeFormatError && /no room for \d+ more section headers/.test(e.message));

  // an unaligned SizeOfHeaders that leaves no room is rounded up to FileAlignment, as ukify does
  const tight = Buffer.from(stub);
  tight.writeUInt32LE(tableEnd, peOffset + PE_OPTIONAL_HEADER + OPT_SIZE_OF_HEADERS);
  const grown = appendSections(tight, sections(1));
  assert.equal(parsePe(grown).sizeOfHeaders, Math.ceil(tableEnd / info.fileAlignment) * info.fileAlignment);
  const path = await writeTemp("grown.efi", grown);
  assert.equal(hex((await objdumpHeader(path)).get("SizeOfHeaders")), parsePe(grown).sizeOfHeaders);
});

test("header space after the section table may be a linker's fill (arm64's stub: AArch64 NOPs), never data", async () => {
  const { stub } = await inputs();
  const peOffset = stub.readUInt32LE(PE_OFFSET);
  const info = parsePe(stub);
  const tableEnd = peOffset + PE_OPTIONAL_HEADER + stub.readUInt16LE(peOffset + PE_SIZE_OF_OPTIONAL_HEADER) + info.sections.length * SECTION_HEADER_SIZE;
  const filled = Buffer.from(stub);
  for (let at = tableEnd; at + 4 <= info.sizeOfHeaders; at += 4) filled.writeUInt32LE(0xd503201f, at);
  const one = [{ name: ".s0", data: Buffer.from([1]) }];
  const appended = appendSections(filled, one);
  assert.equal(parsePe(appended).sections.length, info.sections.length + 1);
  // the new header is whole: its name NUL-padded, relocation and line-number fields zero, none of the fill
  const header = Buffer.from(appended.subarray(tableEnd, tableEnd + SECTION_HEADER_SIZE));
  assert.deepEqual(header.subarray(0, 8), Buffer.from(".s0\0\0\0\0\0", "latin1"));
  assert.deepEqual(header.subarray(24, 36), Buffer.alloc(12));
  const path = await writeTemp("filled.efi", appended);
  assert.deepEqual((await objdumpSections(path)).at(-1)?.name, ".s0");
  const data = Buffer.from(filled);
  data.write("data", tableEnd + 8, "latin1");
  assert.throws(() => appendSections(data, one), /the space after the section table is not empty/);
});
