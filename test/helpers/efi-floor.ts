/**
 * The firmware floor for boot benchmarks: a 1 KiB x86-64 EFI application that prints a ready line on the
 * console (as init does) and powers the machine off at once. OVMF booting it measures what the firmware
 * alone costs before any boot loader or kernel runs. Pure: a PE32+ image written byte by byte.
 */

const FILE_ALIGNMENT = 0x200;
const SECTION_RVA = 0x1000;
const OPTIONAL_HEADER_SIZE = 240;

/** x86-64, Microsoft ABI: ConOut->OutputString(ConOut, message), then RuntimeServices->ResetSystem(EfiResetShutdown). */
function code(message: string): Buffer {
  const text = Buffer.from(`\r\n${message}\r\n\0`, "utf16le");
  const before = Buffer.from([
    0x53, // push rbx
    0x48, 0x83, 0xec, 0x20, // sub rsp, 0x20 (shadow space; the stack stays 16-aligned)
    0x48, 0x89, 0xd3, // mov rbx, rdx (the system table)
    0x48, 0x8b, 0x4b, 0x40, // mov rcx, [rbx+0x40] (ConOut)
  ]);
  const lea = [0x48, 0x8d, 0x15]; // lea rdx, [rip+disp32]
  const after = Buffer.from([
    0xff, 0x51, 0x08, // call [rcx+0x08] (OutputString)
    0x48, 0x8b, 0x43, 0x58, // mov rax, [rbx+0x58] (RuntimeServices)
    0xb9, 0x02, 0x00, 0x00, 0x00, // mov ecx, 2 (EfiResetShutdown)
    0x31, 0xd2, // xor edx, edx (EFI_SUCCESS)
    0x45, 0x31, 0xc0, // xor r8d, r8d
    0x45, 0x31, 0xc9, // xor r9d, r9d
    0xff, 0x50, 0x68, // call [rax+0x68] (ResetSystem)
    0x48, 0x83, 0xc4, 0x20, // add rsp, 0x20
    0x5b, // pop rbx
    0x31, 0xc0, // xor eax, eax
    0xc3, // ret
  ]);
  const displacement = Buffer.alloc(4);
  // the message follows the code: the displacement counts from the end of the lea
  displacement.writeInt32LE(after.length);
  return Buffer.concat([before, Buffer.from(lea), displacement, after, text]);
}

/** The EFI application: DOS stub header, PE32+ headers, one .text section (relocatable: it has no absolute address). */
export function efiFloorApp(message = "bronze: ready firmware=floor"): Buffer {
  const body = code(message);
  const rawSize = Math.ceil(body.length / FILE_ALIGNMENT) * FILE_ALIGNMENT;
  const image = Buffer.alloc(FILE_ALIGNMENT + rawSize);
  image.write("MZ", 0, "latin1");
  image.writeUInt32LE(0x40, 0x3c);
  image.write("PE\0\0", 0x40, "latin1");
  const coff = 0x44;
  image.writeUInt16LE(0x8664, coff); // machine: x86-64
  image.writeUInt16LE(1, coff + 2); // one section
  image.writeUInt16LE(OPTIONAL_HEADER_SIZE, coff + 16);
  image.writeUInt16LE(0x0022, coff + 18); // executable, large-address aware
  const opt = coff + 20;
  image.writeUInt16LE(0x20b, opt); // PE32+
  image.writeUInt32LE(rawSize, opt + 4); // size of code
  image.writeUInt32LE(SECTION_RVA, opt + 16); // entry point
  image.writeUInt32LE(SECTION_RVA, opt + 20); // base of code
  image.writeBigUInt64LE(0x10000000n, opt + 24); // image base
  image.writeUInt32LE(0x1000, opt + 32); // section alignment
  image.writeUInt32LE(FILE_ALIGNMENT, opt + 36);
  image.writeUInt32LE(SECTION_RVA + Math.ceil(rawSize / 0x1000) * 0x1000, opt + 56); // size of image
  image.writeUInt32LE(FILE_ALIGNMENT, opt + 60); // size of headers
  image.writeUInt16LE(10, opt + 68); // subsystem: EFI application
  image.writeUInt32LE(16, opt + 108); // data directories (all empty)
  const section = opt + OPTIONAL_HEADER_SIZE;
  image.write(".text", section, "latin1");
  image.writeUInt32LE(body.length, section + 8); // virtual size
  image.writeUInt32LE(SECTION_RVA, section + 12);
  image.writeUInt32LE(rawSize, section + 16);
  image.writeUInt32LE(FILE_ALIGNMENT, section + 20);
  image.writeUInt32LE(0x60000020, section + 36); // code, execute, read
  body.copy(image, FILE_ALIGNMENT);
  return image;
}
