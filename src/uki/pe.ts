/**
 * A minimal PE/COFF reader and section appender, following the rules of
 * systemd's ukify (which systemd-stub relies on). Pure: bytes in, bytes out.
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
  /** 0x20b for PE32+, 0x10b for PE32 */
  magic: number;
  sectionAlignment: number;
  fileAlignment: number;
  sizeOfImage: number;
  sizeOfHeaders: number;
  /** file offset of the first section header */
  sectionTableOffset: number;
  /** whether the Certificate Table (Authenticode signature) is present */
  signed: boolean;
  sections: PeSection[];
}

export interface NewSection {
  name: string;
  data: Uint8Array;
  /** size in memory, when larger than the data (the kernel's SizeOfImage for .linux) */
  virtualSize?: number;
  /** mark as code (ukify does so for .linux) */
  code?: boolean;
}

const PE32 = 0x10b;
const PE32_PLUS = 0x20b;
const SECTION_HEADER_SIZE = 40;
const COFF_HEADER_SIZE = 20;
const CERTIFICATE_TABLE = 4;

// optional header field offsets, identical for PE32 and PE32+ unless noted
const OPT = {
  sizeOfCode: 4,
  sizeOfInitializedData: 8,
  sectionAlignment: 32,
  fileAlignment: 36,
  sizeOfImage: 56,
  sizeOfHeaders: 60,
  checkSum: 64,
  dataDirectory: { [PE32]: 96, [PE32_PLUS]: 112 } as Record<number, number>,
  numberOfRvaAndSizes: { [PE32]: 92, [PE32_PLUS]: 108 } as Record<number, number>,
};

const SCN_CNT_CODE = 0x00000020;
const SCN_CNT_INITIALIZED_DATA = 0x00000040;
const SCN_MEM_EXECUTE = 0x20000000;
const SCN_MEM_READ = 0x40000000;

const alignUp = (value: number, alignment: number): number => Math.ceil(value / alignment) * alignment;

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readName(bytes: Uint8Array, offset: number): string {
  const raw = bytes.subarray(offset, offset + 8);
  const end = raw.indexOf(0);
  return Buffer.from(raw.subarray(0, end === -1 ? 8 : end)).toString("latin1");
}

interface Layout {
  info: PeInfo;
  coffOffset: number;
  optOffset: number;
}

function layoutOf(bytes: Uint8Array): Layout {
  if (bytes.length < 0x40 || bytes[0] !== 0x4d || bytes[1] !== 0x5a) throw new PeFormatError("not a PE image: no 'MZ' DOS header");
  const dv = view(bytes);
  const peOffset = dv.getUint32(0x3c, true);
  if (peOffset + 4 + COFF_HEADER_SIZE > bytes.length || dv.getUint32(peOffset, true) !== 0x00004550) {
    throw new PeFormatError("not a PE image: no 'PE\\0\\0' signature");
  }
  const coffOffset = peOffset + 4;
  const numberOfSections = dv.getUint16(coffOffset + 2, true);
  const sizeOfOptionalHeader = dv.getUint16(coffOffset + 16, true);
  const optOffset = coffOffset + COFF_HEADER_SIZE;
  const magic = dv.getUint16(optOffset, true);
  if (magic !== PE32 && magic !== PE32_PLUS) throw new PeFormatError(`unknown optional header magic 0x${magic.toString(16)}`);
  const rvaCount = dv.getUint32(optOffset + (OPT.numberOfRvaAndSizes[magic] ?? 0), true);
  const certDir = optOffset + (OPT.dataDirectory[magic] ?? 0) + CERTIFICATE_TABLE * 8;
  const signed = rvaCount > CERTIFICATE_TABLE && (dv.getUint32(certDir, true) !== 0 || dv.getUint32(certDir + 4, true) !== 0);
  const sectionTableOffset = optOffset + sizeOfOptionalHeader;
  if (sectionTableOffset + numberOfSections * SECTION_HEADER_SIZE > bytes.length) throw new PeFormatError("section table runs past the end of the file");
  const sections: PeSection[] = [];
  for (let i = 0; i < numberOfSections; i++) {
    const at = sectionTableOffset + i * SECTION_HEADER_SIZE;
    sections.push({
      name: readName(bytes, at),
      virtualSize: dv.getUint32(at + 8, true),
      virtualAddress: dv.getUint32(at + 12, true),
      sizeOfRawData: dv.getUint32(at + 16, true),
      pointerToRawData: dv.getUint32(at + 20, true),
      characteristics: dv.getUint32(at + 36, true),
    });
  }
  return {
    coffOffset,
    optOffset,
    info: {
      machine: dv.getUint16(coffOffset, true),
      magic,
      sectionAlignment: dv.getUint32(optOffset + OPT.sectionAlignment, true),
      fileAlignment: dv.getUint32(optOffset + OPT.fileAlignment, true),
      sizeOfImage: dv.getUint32(optOffset + OPT.sizeOfImage, true),
      sizeOfHeaders: dv.getUint32(optOffset + OPT.sizeOfHeaders, true),
      sectionTableOffset,
      signed,
      sections,
    },
  };
}

export function parsePe(bytes: Uint8Array): PeInfo {
  return layoutOf(bytes).info;
}

/** The bytes of a section as loaded: its raw data, cut to its virtual size. */
export function sectionData(bytes: Uint8Array, section: PeSection): Uint8Array {
  const length = Math.min(section.virtualSize || section.sizeOfRawData, section.sizeOfRawData);
  return bytes.subarray(section.pointerToRawData, section.pointerToRawData + length);
}

export function checkSectionName(name: string): void {
  if (!/^\.[\x21-\x7e]{1,7}$/.test(name)) {
    throw new PeFormatError(`section name '${name}' is not valid: it must start with '.', be printable ASCII and at most 8 characters`);
  }
}

/**
 * Appends sections after the last one: raw data aligned to FileAlignment,
 * virtual addresses packed ascending and aligned to SectionAlignment; the
 * headers are updated (NumberOfSections, SizeOfImage, SizeOfCode,
 * SizeOfInitializedData, CheckSum = 0), TimeDateStamp is kept.
 */
export function appendSections(image: Uint8Array, additions: readonly NewSection[]): Uint8Array {
  const { info, coffOffset, optOffset } = layoutOf(image);
  if (info.magic !== PE32_PLUS) throw new PeFormatError("only PE32+ images can take new sections");
  if (info.signed) throw new PeFormatError("the stub is signed (it has a Certificate Table); use an unsigned stub and sign the finished UKI");
  const names = new Set(info.sections.map((s) => s.name));
  for (const { name } of additions) {
    checkSectionName(name);
    if (names.has(name)) throw new PeFormatError(`section '${name}' already exists in the image`);
    names.add(name);
  }

  const headersEnd = info.sectionTableOffset + (info.sections.length + additions.length) * SECTION_HEADER_SIZE;
  const firstRaw = Math.min(...info.sections.filter((s) => s.sizeOfRawData > 0).map((s) => s.pointerToRawData), info.sizeOfHeaders);
  if (headersEnd > firstRaw) {
    throw new PeFormatError(`no room for ${additions.length} more section headers (${headersEnd} bytes needed, headers end at ${firstRaw})`);
  }
  const gap = image.subarray(info.sectionTableOffset + info.sections.length * SECTION_HEADER_SIZE, headersEnd);
  if (gap.some((b) => b !== 0)) throw new PeFormatError("the space for new section headers is not empty");

  let rawOffset = alignUp(
    Math.max(image.length, ...info.sections.map((s) => s.pointerToRawData + s.sizeOfRawData)),
    info.fileAlignment,
  );
  let virtualAddress = alignUp(Math.max(...info.sections.map((s) => s.virtualAddress + s.virtualSize)), info.sectionAlignment);
  const placed = additions.map((s) => {
    const virtualSize = Math.max(s.virtualSize ?? 0, s.data.length);
    const entry = {
      ...s,
      virtualSize,
      virtualAddress,
      pointerToRawData: rawOffset,
      sizeOfRawData: alignUp(s.data.length, info.fileAlignment),
    };
    rawOffset += entry.sizeOfRawData;
    virtualAddress = alignUp(virtualAddress + virtualSize, info.sectionAlignment);
    return entry;
  });

  const out = new Uint8Array(rawOffset);
  out.set(image);
  const dv = view(out);
  let sizeOfCode = dv.getUint32(optOffset + OPT.sizeOfCode, true);
  let sizeOfData = dv.getUint32(optOffset + OPT.sizeOfInitializedData, true);
  placed.forEach((s, i) => {
    const at = info.sectionTableOffset + (info.sections.length + i) * SECTION_HEADER_SIZE;
    out.set(Buffer.from(s.name, "latin1"), at);
    dv.setUint32(at + 8, s.virtualSize, true);
    dv.setUint32(at + 12, s.virtualAddress, true);
    dv.setUint32(at + 16, s.sizeOfRawData, true);
    dv.setUint32(at + 20, s.pointerToRawData, true);
    const characteristics = s.code
      ? SCN_CNT_CODE | SCN_MEM_EXECUTE | SCN_MEM_READ
      : SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ;
    dv.setUint32(at + 36, characteristics, true);
    out.set(s.data, s.pointerToRawData);
    if (s.code) sizeOfCode += s.virtualSize;
    else sizeOfData += s.virtualSize;
  });
  dv.setUint16(coffOffset + 2, info.sections.length + additions.length, true);
  dv.setUint32(optOffset + OPT.sizeOfCode, sizeOfCode >>> 0, true);
  dv.setUint32(optOffset + OPT.sizeOfInitializedData, sizeOfData >>> 0, true);
  dv.setUint32(optOffset + OPT.sizeOfImage, virtualAddress, true);
  dv.setUint32(optOffset + OPT.checkSum, 0, true);
  return out;
}
