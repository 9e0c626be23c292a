import { appendSections, parsePe, PeFormatError, sectionData } from "./pe.ts";

export interface UkiInput {
  /** systemd-stub (linuxx64.efi.stub), unsigned */
  stub: Uint8Array;
  /** an EFI-stub kernel image (bzImage) */
  linux: Uint8Array;
  initrd: Uint8Array;
  osRelease: string;
  cmdline: string;
  /** the kernel release (uname -r) */
  uname: string;
}

/**
 * A Unified Kernel Image: the stub plus .osrel .cmdline .uname .linux .initrd,
 * in ukify's order; the stub's own .sbat stays as it is.
 */
export function assembleUki(input: UkiInput): Uint8Array {
  let kernel;
  try {
    kernel = parsePe(input.linux);
  } catch (e) {
    throw new PeFormatError(`kernel is not an EFI stub image (CONFIG_EFI_STUB): ${(e as Error).message}`);
  }
  const text = (s: string): Uint8Array => Buffer.from(s, "utf8");
  return appendSections(input.stub, [
    { name: ".osrel", data: text(input.osRelease) },
    // older stubs read .cmdline as a C string
    { name: ".cmdline", data: text(`${input.cmdline}\0`) },
    { name: ".uname", data: text(input.uname) },
    { name: ".linux", data: input.linux, virtualSize: kernel.sizeOfImage, code: true },
    { name: ".initrd", data: input.initrd },
  ]);
}

export interface UkiSection {
  name: string;
  data: Uint8Array;
}

/** Every section of a UKI with its contents, in file order. */
export function readUkiSections(uki: Uint8Array): UkiSection[] {
  return parsePe(uki).sections.map((s) => ({ name: s.name, data: sectionData(uki, s) }));
}
