import { createPrivateKey, createPublicKey, sign, X509Certificate, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { InputError } from "../core/errors.ts";
import { isEncryptedPrivateKey } from "../core/pem.ts";
import { signPe } from "../uki/authenticode.ts";
import type { PcrSigner } from "../uki/pcr.ts";

/** A Secure Boot signing key with its certificate (the one enrolled in db), checked to belong together. */
export interface SecureBootSigner {
  key: KeyObject;
  /** DER */
  certificate: Buffer;
  certificateSha256: string;
}

export async function readInput(path: string, what: string): Promise<Buffer> {
  return readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new InputError(`${what} ${path}: cannot read it (${e.code ?? e.message})`);
  });
}

/** An RSA private key (PEM, optionally encrypted), for `use`; each way it can be wrong names its option. */
async function readRsaKey(paths: { key: string; passphraseFile?: string | undefined }, flags: { key: string; passphrase: string }, use: string): Promise<KeyObject> {
  const passphrase = paths.passphraseFile ? (await readInput(paths.passphraseFile, flags.passphrase)).toString().replace(/\r?\n$/, "") : undefined;
  const keyText = await readInput(paths.key, flags.key);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyText, passphrase });
  } catch (e) {
    const encrypted = isEncryptedPrivateKey(keyText.toString()) || /passphrase|decrypt|interrupted or cancelled/i.test(String(e));
    throw new InputError(`${flags.key} ${paths.key}: ${encrypted ? `is encrypted; give ${flags.passphrase} with its passphrase` : "not a PEM private key"}`);
  }
  if (key.asymmetricKeyType !== "rsa") throw new InputError(`${flags.key} ${paths.key}: ${use} needs an RSA key, not ${key.asymmetricKeyType ?? "this kind"}`);
  return key;
}

/**
 * The key that signs a UKI's PCR 11 policies (.pcrsig). RSA of at least 2048 bits: what systemd-stub 252
 * passes on and systemd-cryptsetup checks. It stays in memory, as the Secure Boot key does.
 */
export async function loadPcrSigner(paths: { key: string; passphraseFile?: string | undefined }, flags = { key: "--pcr-signing-key", passphrase: "--pcr-signing-key-passphrase-file" }): Promise<PcrSigner> {
  const key = await readRsaKey(paths, flags, "PCR signing (systemd-measure's format)");
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 2048) throw new InputError(`${flags.key} ${paths.key}: a ${bits}-bit RSA key is too weak; give one of at least 2048 bits (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048)`);
  return { publicKey: createPublicKey(key), sign: (digest) => sign("sha256", digest, key) };
}

/**
 * Reads an RSA key (PEM, optionally encrypted) and its certificate (PEM or DER). The key stays
 * in memory: it is never copied, cached or printed.
 */
export async function loadSigner(paths: { key: string; cert: string; passphraseFile?: string | undefined }, flags = { key: "--key", cert: "--cert", passphrase: "--key-passphrase-file" }): Promise<SecureBootSigner> {
  const key = await readRsaKey(paths, flags, "Secure Boot");
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(await readInput(paths.cert, flags.cert));
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`${flags.cert} ${paths.cert}: not an X.509 certificate (PEM or DER)`);
  }
  if (!x509.checkPrivateKey(key)) throw new InputError(`${flags.key} ${paths.key} and ${flags.cert} ${paths.cert} do not belong together`);
  return { key, certificate: Buffer.from(x509.raw), certificateSha256: x509.fingerprint256.replace(/:/g, "").toLowerCase() };
}

/** The Secure Boot signed copies of a build's EFI images, named <name>.signed.efi. */
export function signBootImages(signer: SecureBootSigner, images: readonly { name: string; data: Buffer }[]): { name: string; data: Buffer }[] {
  return images.map(({ name, data }) => ({ name: name.replace(/\.efi$/, ".signed.efi"), data: signPe(data, signer.key, signer.certificate) }));
}
