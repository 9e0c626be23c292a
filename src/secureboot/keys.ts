import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { chmod, mkdir, readdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { InputError } from "../core/errors.ts";
import { run } from "../core/exec.ts";
import { derivedGuid } from "../core/guid.ts";
import { authenticatedUpdate, parseAuthenticatedUpdate, vendorOf, x509SignatureList, SECURE_BOOT_VARIABLE_ATTRIBUTES, type SecureBootVariable } from "./efi-vars.ts";
import type { StoreVariable } from "./ovmf-store.ts";
import { moveIntoPlace, tempBeside } from "../core/atomic.ts";

/**
 * `bronze keys generate`: a Secure Boot key hierarchy for custom-key enrolment. PK signs the PK
 * and KEK updates, KEK signs the db update, and db's key signs UKIs and systemd-boot.
 */

export const KEY_ROLES: readonly SecureBootVariable[] = ["PK", "KEK", "db"];
const SIGNER: Record<SecureBootVariable, SecureBootVariable> = { PK: "PK", KEK: "PK", db: "KEK" };
const SECURE_BOOT_ENABLE = { name: "SecureBootEnable", vendor: "f0a30bc7-af08-4556-99c4-001009c93a44" } as const;

export interface KeyGenerationOptions {
  /** subject common names are "<commonName> PK", "<commonName> KEK", "<commonName> db" */
  commonName: string;
  days: number;
  keyBits: number;
  /** time stamp of the authenticated updates */
  now: Date;
}

export interface GeneratedKeys {
  dir: string;
  owner: string;
  files: string[];
  fingerprints: Record<SecureBootVariable, string>;
}

async function refuseExisting(dir: string): Promise<void> {
  const entries = await readdir(dir).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? undefined : Promise.reject(e)));
  if (entries === undefined) return;
  if (entries.length) throw new InputError(`${dir}: exists and is not empty; keys are never overwritten, give a new directory`);
  await rmdir(dir);
}

interface MadeKey {
  key: KeyObject;
  /** the certificate, DER */
  der: Buffer;
}

async function makeCertificate(dir: string, role: SecureBootVariable, options: KeyGenerationOptions): Promise<MadeKey> {
  const key = join(dir, `${role}.key`);
  const cert = join(dir, `${role}.crt`);
  await run("openssl", [
    "req", "-x509", "-newkey", `rsa:${options.keyBits}`, "-nodes", "-sha256", "-days", String(options.days),
    "-subj", `/CN=${options.commonName.replace(/[/\\]/g, "_")} ${role}`, "-keyout", key, "-out", cert,
  ]);
  await chmod(key, 0o600);
  const der = Buffer.from(new X509Certificate(await readFile(cert)).raw);
  await writeFile(join(dir, `${role}.der`), der);
  return { key: createPrivateKey(await readFile(key)), der };
}

/** Generates PK, KEK and db keys with certificates, their signature lists and signed updates, into a new directory. */
export async function generateKeys(dir: string, options: KeyGenerationOptions): Promise<GeneratedKeys> {
  await refuseExisting(dir);
  const work = tempBeside(dir);
  try {
    await mkdir(work, { mode: 0o700 });
    const made = {} as Record<SecureBootVariable, MadeKey>;
    for (const role of KEY_ROLES) made[role] = await makeCertificate(work, role, options);
    const owner = derivedGuid(made.PK.der);
    await writeFile(join(work, "GUID"), `${owner}\n`);
    for (const role of KEY_ROLES) {
      const list = x509SignatureList(owner, made[role].der);
      await writeFile(join(work, `${role}.esl`), list);
      const signer = made[SIGNER[role]];
      await writeFile(join(work, `${role}.auth`), authenticatedUpdate({ name: role, data: list, time: options.now }, signer.key, signer.der));
    }
    // an empty PK signed by PK: puts the firmware back into setup mode
    await writeFile(join(work, "noPK.auth"), authenticatedUpdate({ name: "PK", data: Buffer.alloc(0), time: options.now }, made.PK.key, made.PK.der));
    await moveIntoPlace(work, dir, { whenPresent: "fail" });
    const fingerprints = Object.fromEntries(KEY_ROLES.map((r) => [r, new X509Certificate(made[r].der).fingerprint256])) as Record<SecureBootVariable, string>;
    return { dir, owner, files: (await readdir(dir)).sort(), fingerprints };
  } catch (e) {
    await rm(work, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The variables that enrol a generated key set in a firmware variable store: PK, KEK and db as
 * their signed updates carry them (time stamp and signature list), and Secure Boot enabled.
 */
/** The signed updates (PK.auth, KEK.auth, db.auth) of a `bronze keys generate` directory, each checked: public data, no key. */
export async function enrolmentUpdates(dir: string): Promise<{ role: SecureBootVariable; data: Buffer; update: ReturnType<typeof parseAuthenticatedUpdate> }[]> {
  const updates = [];
  for (const role of KEY_ROLES) {
    const file = join(dir, `${role}.auth`);
    const data = await readFile(file).catch(() => {
      throw new InputError(`${file}: missing; give a directory made by \`bronze keys generate\``);
    });
    try {
      updates.push({ role, data, update: parseAuthenticatedUpdate(data) });
    } catch (e) {
      throw new InputError(`${file}: ${(e as Error).message}`);
    }
  }
  return updates;
}

export async function enrollmentVariables(dir: string): Promise<StoreVariable[]> {
  const variables: StoreVariable[] = (await enrolmentUpdates(dir)).map(({ role, update }) => ({ name: role, vendor: vendorOf(role), attributes: SECURE_BOOT_VARIABLE_ATTRIBUTES, time: update.time, data: update.data }));
  variables.push({ ...SECURE_BOOT_ENABLE, attributes: 0x3, data: Buffer.from([1]) });
  return variables;
}
