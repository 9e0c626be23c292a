import { createPrivateKey } from "node:crypto";
import { closeSync, lstatSync, openSync, readSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { pacer } from "../core/pace.ts";
import { pemBegin } from "../core/pem.ts";

const PEM_MARKERS = ["RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "PRIVATE KEY"].map((label) => Buffer.from(pemBegin(label)));

/**
 * Byte strings that only a copy of this private key can contain: its DER
 * encodings (PKCS#8 and, for RSA, PKCS#1) and a line of its PEM body.
 */
export function keyNeedles(privateKeyPem: string): Buffer[] {
  const key = createPrivateKey(privateKeyPem);
  const needles = [key.export({ format: "der", type: "pkcs8" })];
  if (key.asymmetricKeyType === "rsa") needles.push(key.export({ format: "der", type: "pkcs1" }));
  const body = (key.export({ format: "pem", type: "pkcs8" }) as string).split("\n").filter((l) => l && !l.startsWith("-----"));
  const middle = body[Math.floor(body.length / 2)];
  if (middle) needles.push(Buffer.from(middle));
  return needles;
}

const CHUNK = 1 << 20;

/** Synchronous reads (see pacer): a kernel tree in 1.5 s instead of 20. `buffer` is the caller's, reused for every file. */
function fileMatches(path: string, needles: readonly Buffer[], buffer: Buffer, overlap: number): boolean {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return false;
  }
  try {
    let position = 0;
    let carried = 0;
    for (;;) {
      const bytesRead = readSync(fd, buffer, carried, CHUNK, position);
      if (bytesRead === 0) return false;
      const view = buffer.subarray(0, carried + bytesRead);
      if (needles.some((n) => view.includes(n))) return true;
      position += bytesRead;
      carried = Math.min(overlap, view.length);
      view.copy(buffer, 0, view.length - carried);
    }
  } finally {
    closeSync(fd);
  }
}

export interface KeyScanOptions {
  /** exact byte strings of a known key (see keyNeedles), searched besides PEM private key headers */
  needles?: readonly Buffer[];
  /** paths (files or directories) not to look into */
  exclude?: readonly string[];
  /** also report any PEM private key header (default); off for trees that ship example keys, like the kernel's */
  pemHeaders?: boolean;
  /**
   * only files changed (ctime, which no program can set back) at or after this time, in ms since the epoch:
   * for a tree whose older files were made where the key could not reach
   */
  changedSince?: number;
}

function changedBefore(path: string, since: number): boolean {
  const info = lstatSync(path, { throwIfNoEntry: false });
  return info !== undefined && info.ctimeMs < since;
}

/** Files below `dirs` holding a PEM private key, or any of the given key's bytes. */
export async function findPrivateKeys(dirs: readonly string[], options: KeyScanOptions = {}): Promise<string[]> {
  const needles = [...(options.pemHeaders === false ? [] : PEM_MARKERS), ...(options.needles ?? [])];
  if (needles.length === 0) return [];
  const exclude = options.exclude ?? [];
  // chunks overlap by the longest needle, so that a match across a boundary is still seen
  const overlap = Math.max(...needles.map((n) => n.length)) - 1;
  const buffer = Buffer.allocUnsafe(CHUNK + overlap);
  const found: string[] = [];
  const pace = pacer();
  for (const dir of dirs) {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const path = join(entry.parentPath, entry.name);
      if (exclude.some((e) => path === e || path.startsWith(`${e}/`))) continue;
      if (options.changedSince !== undefined && changedBefore(path, options.changedSince)) continue;
      if (fileMatches(path, needles, buffer, overlap)) found.push(path);
      await pace();
    }
  }
  return found;
}
