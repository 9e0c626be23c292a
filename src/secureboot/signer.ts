import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { InputError } from "../core/errors.ts";
import { isEncryptedPrivateKey } from "../core/pem.ts";
import { signPe } from "../uki/authenticode.ts";

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

/**
 * Reads an RSA key (PEM, optionally encrypted) and its certificate (PEM or DER). The key stays
 * in memory: it is never copied, cached or printed.
 */
export async function loadSigner(paths: { key: string; cert: string; passphraseFile?: string | undefined }, flags = { key: "--key", cert: "--cert", passphrase: "--key-passphrase-file" }): Promise<SecureBootSigner> {
  const passphrase = paths.passphraseFile ? (await readInput(paths.passphraseFile, flags.passphrase)).toString().replace(/\r?\n$/, "") : undefined;
  const keyText = await readInput(paths.key, flags.key);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyText, passphrase });
  } catch (e) {
    const encrypted = isEncryptedPrivateKey(keyText.toString()) || /passphrase|decrypt|interrupted or cancelled/i.test(String(e));
    throw new InputError(`${flags.key} ${paths.key}: ${encrypted ? `is encrypted; give ${flags.passphrase} with its passphrase` : "not a PEM private key"}`);
  }
  if (key.asymmetricKeyType !== "rsa") throw new InputError(`${flags.key} ${paths.key}: Secure Boot needs an RSA key, not ${key.asymmetricKeyType ?? "this kind"}`);
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
