import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { MODULE_SIG_MAGIC, parseModuleSignature } from "../../src/kernel/module-sig.ts";

/** A throwaway signing key and self-signed certificate, like the kernel's build-time key. */
export async function makeSigningKey(dir: string, name: string): Promise<{ key: string; pem: string; der: string }> {
  const files = { key: join(dir, `${name}.key`), pem: join(dir, `${name}.pem`), der: join(dir, `${name}.der`) };
  await execa("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha512", "-days", "1", "-subj", `/CN=${name}`, "-keyout", files.key, "-out", files.pem]);
  await execa("openssl", ["x509", "-in", files.pem, "-outform", "DER", "-out", files.der]);
  return files;
}

/**
 * Signs module content the way the kernel's sign-file does: a detached CMS
 * signature with no certificates and no signed attributes, then the trailer.
 */
export async function signModule(
  content: Buffer,
  signer: { key: string; pem: string },
  workDir: string,
  options: { keyId?: boolean; digest?: string } = {},
): Promise<Buffer> {
  const input = join(workDir, "module-content.bin");
  const output = join(workDir, "module-signature.der");
  await writeFile(input, content);
  const args = ["cms", "-sign", "-binary", "-noattr", "-nocerts", "-nosmimecap", "-outform", "DER", "-md", options.digest ?? "sha512"];
  if (options.keyId) args.push("-keyid");
  await execa("openssl", [...args, "-signer", signer.pem, "-inkey", signer.key, "-in", input, "-out", output]);
  const signature = await readFile(output);
  const info = Buffer.alloc(12);
  info[2] = 2; // PKEY_ID_PKCS7
  info.writeUInt32BE(signature.length, 8);
  return Buffer.concat([content, signature, info, MODULE_SIG_MAGIC]);
}

/** A module's content without its appended signature. */
export function stripSignature(module: Buffer): Buffer {
  return parseModuleSignature(module)?.content ?? module;
}
