import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  lstatSync,
  openSync,
  readdirSync,
  rmdirSync,
  statfsSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { chmod, mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BronzeError } from "../core/errors.ts";
import { onInterrupt } from "../core/cleanup.ts";
import { run } from "../core/exec.ts";
import { isAbandoned, ownedName } from "../core/ownership.ts";

/** Memory-backed storage for the key: it never touches a persistent disk. */
export const KEY_ROOT = process.env.BRONZE_KEY_DIR ?? "/dev/shm";
const KEY_PREFIX = "bronze-modkey";
const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;
export const KEY_FILE = "signing_key.pem";

/** The key's own x509 request config: the kernel's defaults, named for what it is. */
const GENKEY_CONFIG = `[ req ]
default_bits = 4096
distinguished_name = req_distinguished_name
prompt = no
string_mask = utf8only
x509_extensions = myexts

[ req_distinguished_name ]
CN = bronze ephemeral module signing key

[ myexts ]
basicConstraints=critical,CA:FALSE
keyUsage=digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
`;

/** A module-signing key that exists only for the duration of one kernel build. */
export interface EphemeralKey {
  /** directory on tmpfs holding the key (private key + certificate, PEM) */
  dir: string;
  keyPath: string;
  /** forgets the interrupt handler once the key is gone */
  release: () => void;
}


/** Overwrites every file of a key directory with random bytes, syncs, unlinks, removes the directory. */
export function destroyKeyDir(dir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    const path = join(dir, name);
    const size = lstatSync(path).size;
    const fd = openSync(path, "r+");
    try {
      writeSync(fd, randomBytes(Math.max(size, 4096)), 0, Math.max(size, 4096), 0);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    unlinkSync(path);
  }
  rmdirSync(dir);
}

export function destroyKey(key: EphemeralKey): void {
  destroyKeyDir(key.dir);
  key.release();
}

/** Destroys keys left behind by builds that were killed (their owner process is gone). */
export async function removeLeftoverKeys(): Promise<string[]> {
  const removed: string[] = [];
  const names = await readdir(KEY_ROOT).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith(KEY_PREFIX))) {
    const dir = join(KEY_ROOT, name);
    if (!(await isAbandoned(dir))) continue;
    destroyKeyDir(dir);
    removed.push(dir);
  }
  return removed;
}

function assertMemoryBacked(dir: string): void {
  const type = statfsSync(dir).type;
  if (type !== TMPFS_MAGIC && type !== RAMFS_MAGIC) {
    throw new BronzeError(`${dir} is not memory-backed (tmpfs); refusing to put a module-signing key there. Set BRONZE_KEY_DIR to a tmpfs directory.`);
  }
}

/** Generates an RSA-4096 module-signing key and its certificate on tmpfs. */
export async function createEphemeralKey(logFile: string): Promise<EphemeralKey> {
  assertMemoryBacked(KEY_ROOT);
  // named for this process as it is made: another build sweeping leftover keys meanwhile leaves it alone
  const dir = join(KEY_ROOT, ownedName(KEY_PREFIX));
  await mkdir(dir, { mode: 0o700 });
  const release = onInterrupt(() => destroyKeyDir(dir));
  try {
    await chmod(dir, 0o700);
    await writeFile(join(dir, "x509.genkey"), GENKEY_CONFIG);
    const keyPath = join(dir, KEY_FILE);
    // a serial of fixed DER length (positive, top byte never zero): every build's certificate is the same
    // size, so kernels built with different keys keep the same layout and compare byte for byte once it is masked
    const serial = randomBytes(16);
    serial[0] = 0x40 | (serial[0]! & 0x3f);
    // openssl prints only progress here; the key goes to the file, never to the log
    await run(
      "openssl",
      ["req", "-new", "-nodes", "-utf8", "-sha512", "-days", "36500", "-batch", "-x509", "-set_serial", `0x${serial.toString("hex")}`, "-config", join(dir, "x509.genkey"), "-outform", "PEM", "-out", keyPath, "-keyout", keyPath],
      { logFile },
    );
    await chmod(keyPath, 0o600);
    return { dir, keyPath, release };
  } catch (e) {
    destroyKeyDir(dir);
    release();
    throw e;
  }
}
