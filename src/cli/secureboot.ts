import { readFile, rename, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { InputError } from "../core/errors.ts";

async function readInput(path: string, what: string): Promise<Buffer> {
  return readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new InputError(`${what} ${path}: cannot read it (${e.code ?? e.message})`);
  });
}

// implementations are imported when a command runs: the CLI starts fast
/** `bronze secureboot sign`: Authenticode signatures for UKIs and systemd-boot, reproducible. */
export function registerSecureBootCommands(program: Command): void {
  const secureboot = program.command("secureboot").description("UEFI Secure Boot: sign EFI images");
  secureboot
    .command("sign")
    .description("Authenticode-sign an EFI image (UKI, systemd-boot) with an RSA key; the same input and key give the same bytes")
    .argument("<image>", "the unsigned EFI image")
    .requiredOption("--key <file>", "RSA private key (PEM)")
    .requiredOption("--cert <file>", "its certificate (PEM or DER), enrolled in the firmware's db")
    .option("--key-passphrase-file <file>", "passphrase of an encrypted key")
    .option("-o, --out <file>", "where to write the signed image (default: <image> with .signed.efi)")
    .action(async (image: string, opts: { key: string; cert: string; keyPassphraseFile?: string; out?: string }) => {
      const { createPrivateKey, X509Certificate } = await import("node:crypto");
      const { signPe } = await import("../uki/authenticode.ts");
      const { PeFormatError } = await import("../uki/pe.ts");
      const passphrase = opts.keyPassphraseFile ? (await readInput(opts.keyPassphraseFile, "--key-passphrase-file")).toString().replace(/\r?\n$/, "") : undefined;
      const keyText = await readInput(opts.key, "--key");
      let key;
      try {
        key = createPrivateKey({ key: keyText, passphrase });
      } catch (e) {
        const encrypted = keyText.includes("ENCRYPTED") || /passphrase|decrypt|interrupted or cancelled/i.test(String(e));
        throw new InputError(`--key ${opts.key}: ${encrypted ? "is encrypted; give --key-passphrase-file with its passphrase" : "not a PEM private key"}`);
      }
      let certificate: Buffer;
      try {
        certificate = Buffer.from(new X509Certificate(await readInput(opts.cert, "--cert")).raw);
      } catch (e) {
        if (e instanceof InputError) throw e;
        throw new InputError(`--cert ${opts.cert}: not an X.509 certificate (PEM or DER)`);
      }
      if (!new X509Certificate(certificate).checkPrivateKey(key)) throw new InputError(`--key ${opts.key} and --cert ${opts.cert} do not belong together`);
      let signed: Buffer;
      try {
        signed = signPe(await readInput(image, "image"), key, certificate);
      } catch (e) {
        if (e instanceof PeFormatError) throw new InputError(`${image}: ${e.message}`);
        throw e;
      }
      const out = opts.out ?? image.replace(/(\.efi)?$/, ".signed.efi");
      await writeFile(`${out}.tmp`, signed);
      await rename(`${out}.tmp`, out);
      console.log(`signed ${image} -> ${out} (${signed.length} bytes)`);
    });
}
