import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { InputError } from "../core/errors.ts";
import { isEncryptedPrivateKey, pemLabels } from "../core/pem.ts";
import { sha256 } from "../core/hash.ts";
import { keyNeedles } from "./key-scan.ts";

/**
 * A module-signing key the user keeps (bring your own key): bound read-only into
 * the module-signing step, never copied, never destroyed; only its certificate
 * (public) is written anywhere.
 */
export interface SuppliedKey {
  /** absolute path of the user's private key (PEM) */
  keyPath: string;
  certPath: string;
  /** the certificate as PEM, what the kernel build embeds */
  certPem: string;
  certSha256: string;
  /** byte strings only a copy of the private key can contain, to prove none was made */
  needles: Buffer[];
}

async function readInput(path: string, option: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new InputError(`${option} ${path}: cannot read it (${code}); give the path of ${what}`);
  }
}

function parsePrivateKey(text: string, path: string): KeyObject {
  const option = "--module-signing-key";
  if (pemLabels(text).length === 0) {
    throw new InputError(`${option} ${path}: not a PEM file; the kernel's sign-file reads PEM (convert with: openssl pkey -in KEY -out KEY.pem)`);
  }
  if (isEncryptedPrivateKey(text)) {
    throw new InputError(`${option} ${path}: the key is encrypted; module signing runs unattended and needs an unencrypted key (keep it on protected storage instead)`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch {
    throw new InputError(`${option} ${path}: holds no private key (expected a PEM "PRIVATE KEY" or "RSA PRIVATE KEY" block)`);
  }
  if (key.asymmetricKeyType !== "rsa") {
    throw new InputError(`${option} ${path}: a ${key.asymmetricKeyType ?? "unknown"} key; bronze's kernels verify RSA module signatures, give an RSA key (e.g. openssl req -x509 -newkey rsa:4096 ...)`);
  }
  return key;
}

function parseCertificate(data: Buffer, path: string): X509Certificate {
  try {
    return new X509Certificate(data);
  } catch {
    throw new InputError(`--module-signing-cert ${path}: not an X.509 certificate (PEM or DER)`);
  }
}

/** Reads and checks a user's key and certificate: both parse, and the certificate is the key's. */
export async function loadSuppliedKey(keyPathArg: string, certPathArg: string): Promise<SuppliedKey> {
  const keyPath = resolve(keyPathArg);
  const certPath = resolve(certPathArg);
  const keyText = (await readInput(keyPath, "--module-signing-key", "an unencrypted PEM private key")).toString("latin1");
  const key = parsePrivateKey(keyText, keyPathArg);
  const cert = parseCertificate(await readInput(certPath, "--module-signing-cert", "the key's X.509 certificate"), certPathArg);
  if (!cert.checkPrivateKey(key)) {
    throw new InputError(`--module-signing-cert ${certPathArg}: this certificate is not the one of the key ${keyPathArg} (their public keys differ)`);
  }
  return { keyPath, certPath, certPem: cert.toString(), certSha256: sha256(cert.raw), needles: keyNeedles(keyText) };
}
