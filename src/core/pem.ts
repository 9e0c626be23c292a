/**
 * PEM block labels. The markers are built from parts so that no source file reads as holding
 * key material to a scanner (ours, or a repository's).
 */

const DASHES = "-----";

/** The line that opens a PEM block with this label, e.g. pemBegin("RSA PRIVATE KEY"). */
export function pemBegin(label: string): string {
  return `${DASHES}BEGIN ${label}${DASHES}`;
}

/** The labels of the PEM blocks in a text, in order. */
export function pemLabels(text: string): string[] {
  return [...text.matchAll(/^-{5}BEGIN ([A-Z0-9 ]+)-{5}\s*$/gm)].map((m) => m[1] as string);
}

/** A private key that needs a passphrase: PKCS#8 "ENCRYPTED …" blocks, or the legacy OpenSSL Proc-Type header. */
export function isEncryptedPrivateKey(text: string): boolean {
  return pemLabels(text).some((label) => label.endsWith("PRIVATE KEY") && label.split(" ").includes("ENCRYPTED")) || text.includes("Proc-Type: 4,ENCRYPTED");
}
