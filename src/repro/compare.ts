import { parseModuleSignature } from "../kernel/module-sig.ts";
import { buildIdNotes, gnuBuildId, isBzImage, kernelPayload, parseBzImage } from "./bzimage.ts";

/** How two builds of one file compare. */
export type Verdict =
  | { status: "identical" }
  /** equal once what the ephemeral key changes is set aside; `how` says what was set aside */
  | { status: "equivalent"; how: string }
  | { status: "different"; detail: string };

/** The first offset where two buffers differ, or undefined when they are equal. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number | undefined {
  const length = Math.min(a.length, b.length);
  // compare in large slices first: files here are up to hundreds of MiB
  const slice = 1 << 16;
  for (let start = 0; start < length; start += slice) {
    const end = Math.min(start + slice, length);
    if (Buffer.compare(a.subarray(start, end), b.subarray(start, end)) === 0) continue;
    for (let i = start; i < end; i++) if (a[i] !== b[i]) return i;
  }
  return a.length === b.length ? undefined : length;
}

const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * "differs at offset N" with the bytes there, or the sizes when one is a prefix of the other.
 * `base` is where the buffers start in their files, when they are chunks of them.
 */
export function describeDifference(a: Uint8Array, b: Uint8Array, offset: number, base = 0): string {
  if (offset >= a.length || offset >= b.length) return `sizes differ (${base + a.length} and ${base + b.length} bytes); equal up to offset ${base + offset}`;
  const window = (x: Uint8Array) => Buffer.from(x.subarray(offset, offset + 8)).toString("hex");
  return `differs at offset ${base + offset} (${hex(base + offset)}): ${window(a)} vs ${window(b)}`;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): Verdict {
  const offset = firstDifference(a, b);
  return offset === undefined ? { status: "identical" } : { status: "different", detail: describeDifference(a, b, offset) };
}

/** Two signed modules: equal content once each one's appended signature is removed. */
export function compareSignedModules(a: Buffer, b: Buffer): Verdict {
  if (a.equals(b)) return { status: "identical" };
  const sa = parseModuleSignature(a);
  const sb = parseModuleSignature(b);
  if (!sa || !sb) return { status: "different", detail: `${!sa ? "the first" : "the second"} is not a signed module; ${describeDifference(a, b, firstDifference(a, b) ?? 0)}` };
  const offset = firstDifference(sa.content, sb.content);
  if (offset !== undefined) return { status: "different", detail: `with signatures stripped, ${describeDifference(sa.content, sb.content, offset)}` };
  return { status: "equivalent", how: `identical with signatures stripped (${sa.content.length} bytes of module; signatures ${a.length - sa.content.length} and ${b.length - sb.content.length} bytes)` };
}

/** Where a certificate sits in a kernel: exactly once, or the kernel is not comparable this way. */
function certificateOffset(kernel: Buffer, cert: Buffer, which: string): number {
  const at = kernel.indexOf(cert);
  if (at < 0) throw new Error(`the ${which} kernel does not embed its module-signing certificate`);
  if (kernel.indexOf(cert, at + 1) >= 0) throw new Error(`the ${which} kernel embeds its certificate more than once`);
  return at;
}

/** The uncompressed kernel of a boot image: an x86 bzImage's payload, or an arm64 Image itself (it is not compressed). */
function uncompressedKernel(image: Buffer): { kernel: Buffer; wrapper?: number } {
  if (!isBzImage(image)) return { kernel: image };
  const layout = parseBzImage(image);
  return { kernel: kernelPayload(image, layout), wrapper: layout.payloadLength };
}

/**
 * Two kernel images, each with its own module-signing certificate: their uncompressed kernels must be
 * byte-identical once the certificate is masked; the compressed wrappers (x86) then differ only as the
 * compressed streams do (different bytes compress to a different length, which the setup header records).
 */
export function compareKernelImages(a: Buffer, certA: Buffer, b: Buffer, certB: Buffer): Verdict {
  if (a.equals(b)) return { status: "identical" };
  const [unpackedA, unpackedB] = [uncompressedKernel(a), uncompressedKernel(b)];
  const [kernelA, kernelB] = [unpackedA.kernel, unpackedB.kernel];
  const at = certificateOffset(kernelA, certA, "first");
  const atB = certificateOffset(kernelB, certB, "second");
  if (at !== atB || certA.length !== certB.length) {
    return { status: "different", detail: `the certificates sit at different places or differ in length (${certA.length} bytes at ${hex(at)}, ${certB.length} bytes at ${hex(atB)})` };
  }
  // the build ID is a hash over the whole kernel, certificate included: it follows the key too
  const buildIds = (kernel: Buffer) => {
    const elf = gnuBuildId(kernel);
    return elf ? [elf] : buildIdNotes(kernel);
  };
  const [idsA, idsB] = [buildIds(kernelA), buildIds(kernelB)];
  const places = (ids: readonly { offset: number }[]) => ids.map((id) => id.offset).join(", ") || "none";
  if (places(idsA) !== places(idsB)) return { status: "different", detail: `the build IDs sit at different places (${places(idsA)} and ${places(idsB)})` };
  const masked = (kernel: Buffer) => {
    const copy = Buffer.from(kernel);
    copy.fill(0, at, at + certA.length);
    for (const id of idsA) copy.fill(0, id.offset, id.offset + id.length);
    return copy;
  };
  const offset = firstDifference(masked(kernelA), masked(kernelB));
  if (offset !== undefined) {
    return { status: "different", detail: `the uncompressed kernel (certificate masked) ${describeDifference(kernelA, kernelB, offset)}` };
  }
  return {
    status: "equivalent",
    how:
      `uncompressed kernel (${kernelA.length} bytes) identical with the module-signing certificate masked (${certA.length} bytes at ${hex(at)})` +
      (idsA.length ? ` and the GNU build ID(s) derived from it (${idsA.map((id) => `${id.length} bytes at ${hex(id.offset)}`).join(", ")})` : "") +
      (unpackedA.wrapper !== undefined ? `; compressed streams ${unpackedA.wrapper} and ${unpackedB.wrapper ?? 0} bytes` : ""),
  };
}
