/**
 * A minimal PE32+ reader and section appender, following the rules of
 * systemd's ukify (pe_add_sections), which systemd-stub relies on.
 * Pure: bytes in, bytes out.
 */

export class PeFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PeFormatError";
  }
}

export interface PeSection {
  name: string;
  virtualSize: number;
  virtualAddress: number;
  sizeOfRawData: number;
  pointerToRawData: number;
  characteristics: number;
}

export interface PeInfo {
  machine: number;
  timeDateStamp: number;
  sectionAlignment: number;
  fileAlignment: number;
  sizeOfImage: number;
  sizeOfHeaders: number;
  /** the Certificate Table (an Authenticode signature) is present */
  signed: boolean;
  sections: PeSection[];
}

export interface NewSection {
  name: string;
  data: Uint8Array;
  /** size in memory instead of the data's length (the kernel's SizeOfImage for .linux) */
  virtualSize?: number;
  /** mark as code, as ukify does for .linux */
  code?: boolean;
}

const DOS_MAGIC = 0x5a4d; // "MZ"
const DOS_HEADER_SIZE = 0x40;
const DOS_PE_OFFSET = 0x3c; // e_lfanew
const PE_SIGNATURE = 0x00004550; // "PE\0\0"
const PE_SIGNATURE_SIZE = 4;

const COFF = {
  machine: 0,
  numberOfSections: 2,
  timeDateStamp: 4,
  pointerToSymbolTable: 8,
  numberOfSymbols: 12,
  sizeOfOptionalHeader: 16,
  characteristics: 18,
  size: 20,
} as const;
const FILE_LOCAL_SYMS_STRIPPED = 0x0008;

const PE32 = 0x10b;
const PE32_PLUS = 0x20b;
const OPT = {
  magic: 0,
  sizeOfInitializedData: 8,
  sectionAlignment: 32,
  fileAlignment: 36,
  sizeOfImage: 56,
  sizeOfHeaders: 60,
  checkSum: 64,
  numberOfRvaAndSizes: 108,
  dataDirectory: 112,
} as const;
const DATA_DIRECTORY_ENTRY_SIZE = 8;
const CERTIFICATE_TABLE = 4;

const SECTION = {
  name: 0,
  virtualSize: 8,
  virtualAddress: 12,
  sizeOfRawData: 16,
  pointerToRawData: 20,
  characteristics: 36,
  size: 40,
} as const;
const SECTION_NAME_MAX = 8;

const SCN_CNT_CODE = 0x00000020;
const SCN_CNT_INITIALIZED_DATA = 0x00000040;
const SCN_MEM_EXECUTE = 0x20000000;
const SCN_MEM_READ = 0x40000000;

const UINT32_MAX = 0xffffffff;

const alignUp = (value: number, alignment: number): number => Math.ceil(value / alignment) * alignment;

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Where the headers are, besides what they say. */
interface Layout {
  info: PeInfo;
  coffOffset: number;
  optOffset: number;
  sectionTableOffset: number;
}

function readCoffOffset(bytes: Uint8Array, dv: DataView): number {
  if (bytes.length < DOS_HEADER_SIZE || dv.getUint16(0, true) !== DOS_MAGIC) {
    throw new PeFormatError("not a PE image: no 'MZ' DOS header");
  }
  const peOffset = dv.getUint32(DOS_PE_OFFSET, true);
  if (peOffset + PE_SIGNATURE_SIZE + COFF.size > bytes.length || dv.getUint32(peOffset, true) !== PE_SIGNATURE) {
    throw new PeFormatError("not a PE image: no 'PE\\0\\0' signature");
  }
  return peOffset + PE_SIGNATURE_SIZE;
}

function readOptionalHeader(bytes: Uint8Array, dv: DataView, optOffset: number, size: number) {
  const magic = optOffset + 2 <= bytes.length ? dv.getUint16(optOffset + OPT.magic, true) : 0;
  if (magic !== PE32_PLUS) {
    const kind = magic === PE32 ? "PE32 (32-bit)" : `unknown (magic 0x${magic.toString(16)})`;
    throw new PeFormatError(`only PE32+ images are supported; this optional header is ${kind}`);
  }
  if (size < OPT.dataDirectory || optOffset + size > bytes.length) {
    throw new PeFormatError(`optional header is truncated (${size} bytes)`);
  }
  const directories = dv.getUint32(optOffset + OPT.numberOfRvaAndSizes, true);
  const certificateTable = optOffset + OPT.dataDirectory + CERTIFICATE_TABLE * DATA_DIRECTORY_ENTRY_SIZE;
  const signed =
    directories > CERTIFICATE_TABLE &&
    certificateTable + DATA_DIRECTORY_ENTRY_SIZE <= optOffset + size &&
    (dv.getUint32(certificateTable, true) !== 0 || dv.getUint32(certificateTable + 4, true) !== 0);
  const field = (offset: number): number => dv.getUint32(optOffset + offset, true);
  return {
    sectionAlignment: field(OPT.sectionAlignment),
    fileAlignment: field(OPT.fileAlignment),
    sizeOfImage: field(OPT.sizeOfImage),
    sizeOfHeaders: field(OPT.sizeOfHeaders),
    signed,
  };
}

function readSectionName(bytes: Uint8Array, offset: number): string {
  const raw = bytes.subarray(offset, offset + SECTION_NAME_MAX);
  const end = raw.indexOf(0);
  return Buffer.from(end === -1 ? raw : raw.subarray(0, end)).toString("latin1");
}

function readSectionTable(bytes: Uint8Array, dv: DataView, offset: number, count: number): PeSection[] {
  if (offset + count * SECTION.size > bytes.length) throw new PeFormatError("section table runs past the end of the file");
  return Array.from({ length: count }, (_, i) => {
    const at = offset + i * SECTION.size;
    return {
      name: readSectionName(bytes, at + SECTION.name),
      virtualSize: dv.getUint32(at + SECTION.virtualSize, true),
      virtualAddress: dv.getUint32(at + SECTION.virtualAddress, true),
      sizeOfRawData: dv.getUint32(at + SECTION.sizeOfRawData, true),
      pointerToRawData: dv.getUint32(at + SECTION.pointerToRawData, true),
      characteristics: dv.getUint32(at + SECTION.characteristics, true),
    };
  });
}

function readLayout(bytes: Uint8Array): Layout {
  const dv = view(bytes);
  const coffOffset = readCoffOffset(bytes, dv);
  const optOffset = coffOffset + COFF.size;
  const optSize = dv.getUint16(coffOffset + COFF.sizeOfOptionalHeader, true);
  const optional = readOptionalHeader(bytes, dv, optOffset, optSize);
  if (optional.fileAlignment === 0 || optional.sectionAlignment === 0) throw new PeFormatError("FileAlignment and SectionAlignment must not be 0");
  const sectionTableOffset = optOffset + optSize;
  const sections = readSectionTable(bytes, dv, sectionTableOffset, dv.getUint16(coffOffset + COFF.numberOfSections, true));
  return {
    coffOffset,
    optOffset,
    sectionTableOffset,
    info: {
      machine: dv.getUint16(coffOffset + COFF.machine, true),
      timeDateStamp: dv.getUint32(coffOffset + COFF.timeDateStamp, true),
      ...optional,
      sections,
    },
  };
}

export function parsePe(bytes: Uint8Array): PeInfo {
  return readLayout(bytes).info;
}

/** A section's bytes as loaded: its raw data, cut to its virtual size. */
export function sectionData(image: Uint8Array, section: PeSection): Uint8Array {
  const length = Math.min(section.virtualSize || section.sizeOfRawData, section.sizeOfRawData);
  return image.subarray(section.pointerToRawData, section.pointerToRawData + length);
}

/** A section as the loader maps it: VirtualSize bytes, zeros after its file data. */
export function sectionAsLoaded(image: Uint8Array, section: PeSection): Uint8Array {
  const data = sectionData(image, section);
  if (section.virtualSize <= data.length) return data;
  const loaded = new Uint8Array(section.virtualSize);
  loaded.set(data);
  return loaded;
}

/** The bytes of the section called `name`, or undefined when there is none. */
export function readSection(image: Uint8Array, name: string): Uint8Array | undefined {
  const section = parsePe(image).sections.find((s) => s.name === name);
  return section && sectionData(image, section);
}

export function checkSectionName(name: string): void {
  if (!name.startsWith(".")) throw new PeFormatError(`section name '${name}' must start with '.'`);
  if (name.length > SECTION_NAME_MAX) throw new PeFormatError(`section name '${name}' is longer than ${SECTION_NAME_MAX} bytes`);
  if (!/^[\x20-\x7e]+$/.test(name)) throw new PeFormatError(`section name ${JSON.stringify(name)} is not printable ASCII`);
}

function checkNewNames(existing: readonly PeSection[], additions: readonly NewSection[]): void {
  const names = new Set(existing.map((s) => s.name));
  for (const { name } of additions) {
    checkSectionName(name);
    if (names.has(name)) throw new PeFormatError(`section '${name}' already exists in the image`);
    names.add(name);
  }
}

/**
 * The SizeOfHeaders the image gets once `count` more section headers are in
 * its table. Like ukify, SizeOfHeaders may grow up to the next FileAlignment
 * boundary: that space lies before the first section's data and is unused.
 */
function sizeOfHeadersFor(image: Uint8Array, layout: Layout, count: number): number {
  const { info, sectionTableOffset } = layout;
  const tableEnd = sectionTableOffset + info.sections.length * SECTION.size;
  const newEnd = tableEnd + count * SECTION.size;
  const firstData = Math.min(...info.sections.filter((s) => s.sizeOfRawData > 0).map((s) => s.pointerToRawData), image.length);
  const firstAddress = Math.min(...info.sections.map((s) => s.virtualAddress), Infinity);
  const grown = alignUp(info.sizeOfHeaders, info.fileAlignment);
  const room = Math.min(grown <= Math.min(firstData, firstAddress) ? grown : info.sizeOfHeaders, firstData);
  if (newEnd > room) {
    throw new PeFormatError(
      `no room for ${count} more section headers: the section table would end at byte ${newEnd}, past the end of the headers at ${room}`,
    );
  }
  if (!isFill(image.subarray(tableEnd, newEnd)) || dataDirectoryIn(image, layout, tableEnd, newEnd)) {
    throw new PeFormatError("the space after the section table is not empty; new section headers would overwrite data");
  }
  return newEnd > info.sizeOfHeaders ? grown : info.sizeOfHeaders;
}

/**
 * Whether header space holds no data: zeros, or one 4-byte word repeated, as a linker pads it (systemd's
 * arm64 stub has its headers padded with AArch64 NOPs, d503201f).
 */
function isFill(space: Uint8Array): boolean {
  if (space.length % 4 !== 0) return space.every((b) => b === 0);
  return space.every((b, i) => b === space[i % 4]);
}

/** Whether a data directory of the image points into [from, to) (in the headers, an RVA is a file offset). */
function dataDirectoryIn(image: Uint8Array, layout: Layout, from: number, to: number): boolean {
  const dv = view(image);
  const count = dv.getUint32(layout.optOffset + OPT.numberOfRvaAndSizes, true);
  for (let i = 0; i < count; i++) {
    const at = layout.optOffset + OPT.dataDirectory + i * DATA_DIRECTORY_ENTRY_SIZE;
    if (at + DATA_DIRECTORY_ENTRY_SIZE > layout.sectionTableOffset) break;
    const rva = dv.getUint32(at, true);
    const size = dv.getUint32(at + 4, true);
    if (size > 0 && rva < to && rva + size > from) return true;
  }
  return false;
}

/**
 * Where the new sections go: right after the stub's last section. What a stub holds past its sections is
 * dropped: a COFF symbol table (systemd 252's amd64 stub; like ukify), or bytes no section holds (its arm64
 * stub's SBAT text, beyond SizeOfImage, never loaded). Kept, they would lie between two sections, where
 * Authenticode hashes nothing but verifiers still count them (sbverify: "gaps between PE/COFF sections").
 */
function dataEnd(image: Uint8Array, layout: Layout): { end: number; stripSymbols: boolean } {
  const dv = view(image);
  const symbols = dv.getUint32(layout.coffOffset + COFF.pointerToSymbolTable, true);
  const sectionsEnd = Math.max(...layout.info.sections.map((s) => s.pointerToRawData + s.sizeOfRawData), layout.info.sizeOfHeaders);
  return { end: sectionsEnd, stripSymbols: symbols >= sectionsEnd };
}

interface Placed extends NewSection {
  virtualSize: number;
  virtualAddress: number;
  pointerToRawData: number;
  sizeOfRawData: number;
}

/** Raw data after the last byte of the file, virtual addresses after the last section, each aligned. */
function place(info: PeInfo, fileEnd: number, additions: readonly NewSection[]): { placed: Placed[]; fileSize: number; sizeOfImage: number } {
  let rawOffset = alignUp(fileEnd, info.fileAlignment);
  let virtualAddress = alignUp(
    Math.max(...info.sections.map((s) => s.virtualAddress + (s.virtualSize || s.sizeOfRawData)), info.sizeOfHeaders),
    info.sectionAlignment,
  );
  const placed = additions.map((s) => {
    const entry = {
      ...s,
      virtualSize: s.virtualSize ?? s.data.length,
      virtualAddress,
      pointerToRawData: rawOffset,
      sizeOfRawData: alignUp(s.data.length, info.fileAlignment),
    };
    rawOffset += entry.sizeOfRawData;
    virtualAddress = alignUp(virtualAddress + entry.virtualSize, info.sectionAlignment);
    return entry;
  });
  if (rawOffset > UINT32_MAX || virtualAddress > UINT32_MAX) throw new PeFormatError("the image would be larger than 4 GiB");
  return { placed, fileSize: rawOffset, sizeOfImage: virtualAddress };
}

function characteristicsOf(section: NewSection): number {
  const data = SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ;
  return section.code ? data | SCN_CNT_CODE | SCN_MEM_EXECUTE : data;
}

/** Writes a whole section header: what it goes over may be a linker's fill, never to be left in a field. */
function writeSectionHeader(out: Uint8Array, at: number, section: Placed): void {
  const dv = view(out);
  out.fill(0, at, at + SECTION.size);
  out.set(Buffer.from(section.name, "latin1"), at + SECTION.name);
  dv.setUint32(at + SECTION.virtualSize, section.virtualSize, true);
  dv.setUint32(at + SECTION.virtualAddress, section.virtualAddress, true);
  dv.setUint32(at + SECTION.sizeOfRawData, section.sizeOfRawData, true);
  dv.setUint32(at + SECTION.pointerToRawData, section.pointerToRawData, true);
  dv.setUint32(at + SECTION.characteristics, characteristicsOf(section), true);
}

/**
 * Appends sections after the last one: raw data aligned to FileAlignment,
 * virtual addresses packed ascending and aligned to SectionAlignment. As
 * ukify does: NumberOfSections, SizeOfImage and SizeOfInitializedData (for
 * every new section, .linux included; SizeOfCode is left alone) are updated,
 * CheckSum becomes 0, TimeDateStamp is kept.
 */
export function appendSections(image: Uint8Array, additions: readonly NewSection[]): Uint8Array {
  const layout = readLayout(image);
  const { info, coffOffset, optOffset, sectionTableOffset } = layout;
  if (info.signed) {
    throw new PeFormatError("the stub is signed (it has a Certificate Table): it must be unsigned; sign the finished UKI instead");
  }
  checkNewNames(info.sections, additions);
  const sizeOfHeaders = sizeOfHeadersFor(image, layout, additions.length);
  const { end, stripSymbols } = dataEnd(image, layout);
  const { placed, fileSize, sizeOfImage } = place(info, end, additions);

  const out = new Uint8Array(fileSize);
  out.set(image.subarray(0, end));
  const dv = view(out);
  placed.forEach((s, i) => {
    writeSectionHeader(out, sectionTableOffset + (info.sections.length + i) * SECTION.size, s);
    out.set(s.data, s.pointerToRawData);
  });

  const initializedData = dv.getUint32(optOffset + OPT.sizeOfInitializedData, true) + placed.reduce((sum, s) => sum + s.virtualSize, 0);
  if (initializedData > UINT32_MAX) throw new PeFormatError("SizeOfInitializedData would be larger than 4 GiB");
  dv.setUint16(coffOffset + COFF.numberOfSections, info.sections.length + placed.length, true);
  if (stripSymbols) {
    dv.setUint32(coffOffset + COFF.pointerToSymbolTable, 0, true);
    dv.setUint32(coffOffset + COFF.numberOfSymbols, 0, true);
    dv.setUint16(coffOffset + COFF.characteristics, dv.getUint16(coffOffset + COFF.characteristics, true) | FILE_LOCAL_SYMS_STRIPPED, true);
  }
  dv.setUint32(optOffset + OPT.sizeOfInitializedData, initializedData, true);
  dv.setUint32(optOffset + OPT.sizeOfImage, sizeOfImage, true);
  dv.setUint32(optOffset + OPT.sizeOfHeaders, sizeOfHeaders, true);
  dv.setUint32(optOffset + OPT.checkSum, 0, true);
  return out;
}

/** What an Authenticode signer needs to know of an image: the fields it must skip, and its sections. */
export interface SigningLayout {
  /** file offset of OptionalHeader.CheckSum (4 bytes, not hashed) */
  checksumOffset: number;
  /** file offset of the Certificate Table data directory entry (8 bytes, not hashed) */
  certificateEntryOffset: number;
  sizeOfHeaders: number;
  sections: PeSection[];
  /** the Certificate Table (file offset and size), when the image is signed */
  certificateTable?: { offset: number; size: number };
}

export function signingLayout(bytes: Uint8Array): SigningLayout {
  const layout = readLayout(bytes);
  const dv = view(bytes);
  const directories = dv.getUint32(layout.optOffset + OPT.numberOfRvaAndSizes, true);
  if (directories <= CERTIFICATE_TABLE) throw new PeFormatError("the optional header has no Certificate Table entry");
  const certificateEntryOffset = layout.optOffset + OPT.dataDirectory + CERTIFICATE_TABLE * DATA_DIRECTORY_ENTRY_SIZE;
  const offset = dv.getUint32(certificateEntryOffset, true);
  const size = dv.getUint32(certificateEntryOffset + 4, true);
  return {
    checksumOffset: layout.optOffset + OPT.checkSum,
    certificateEntryOffset,
    sizeOfHeaders: layout.info.sizeOfHeaders,
    sections: layout.info.sections,
    certificateTable: offset || size ? { offset, size } : undefined,
  };
}
