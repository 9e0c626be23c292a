import { appendSections, parsePe, PeFormatError, sectionData } from "./pe.ts";
import type { PeInfo } from "./pe.ts";
import { pcrPublicKeyPem, pcrSignature, predictPcr11, type PcrSigner } from "./pcr.ts";

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
  /** measured boot: sign the predicted PCR 11 of each boot phase (.pcrsig, with the public key as .pcrpkey) */
  pcrSigner?: PcrSigner;
}

export interface UkiSection {
  name: string;
  data: Uint8Array;
}

function parseKernel(linux: Uint8Array, stub: Uint8Array): PeInfo {
  let kernel: PeInfo;
  try {
    kernel = parsePe(linux);
  } catch (e) {
    if (!(e instanceof PeFormatError)) throw e;
    throw new PeFormatError(`kernel is not an EFI stub image (CONFIG_EFI_STUB): ${e.message}`);
  }
  const { machine } = parsePe(stub);
  if (kernel.machine !== machine) {
    throw new PeFormatError(`kernel machine 0x${kernel.machine.toString(16)} does not match the stub's 0x${machine.toString(16)}`);
  }
  return kernel;
}

const text = (s: string): Uint8Array => Buffer.from(s, "utf8");

/**
 * A Unified Kernel Image: the stub plus .osrel .cmdline .uname .linux .initrd (and .pcrpkey .pcrsig when
 * PCR 11 is signed), in ukify's order; the stub's own .sbat stays as it is.
 */
export function assembleUki(input: UkiInput): Uint8Array {
  const kernel = parseKernel(input.linux, input.stub);
  const { pcrSigner } = input;
  const uki = appendSections(input.stub, [
    { name: ".osrel", data: text(input.osRelease) },
    // older stubs read .cmdline as a C string
    { name: ".cmdline", data: text(`${input.cmdline}\0`) },
    { name: ".uname", data: text(input.uname) },
    // the stub loads the kernel from memory: it needs the room the kernel's own header asks for
    { name: ".linux", data: input.linux, virtualSize: Math.max(kernel.sizeOfImage, input.linux.length), code: true },
    { name: ".initrd", data: input.initrd },
    ...(pcrSigner ? [{ name: ".pcrpkey", data: text(pcrPublicKeyPem(pcrSigner)) }] : []),
  ]);
  // what .pcrsig signs is measured from every other section, so it comes last
  return pcrSigner ? appendSections(uki, [{ name: ".pcrsig", data: text(pcrSignature(predictPcr11(uki), pcrSigner)) }]) : uki;
}

/** Every section of a UKI with its contents as loaded, in header order. */
export function readUkiSections(uki: Uint8Array): UkiSection[] {
  return parsePe(uki).sections.map((s) => ({ name: s.name, data: sectionData(uki, s) }));
}
