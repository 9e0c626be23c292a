import { InvalidArgumentError, type Command } from "commander";
import { wholeNumberOption } from "./number-option.ts";
import { InputError } from "../core/errors.ts";
import { writeFileAtomic } from "../core/atomic.ts";

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
      const { loadSigner, readInput } = await import("../secureboot/signer.ts");
      const { signPe } = await import("../uki/authenticode.ts");
      const { PeFormatError } = await import("../uki/pe.ts");
      const signer = await loadSigner({ key: opts.key, cert: opts.cert, passphraseFile: opts.keyPassphraseFile });
      let signed: Buffer;
      try {
        signed = signPe(await readInput(image, "image"), signer.key, signer.certificate);
      } catch (e) {
        if (e instanceof PeFormatError) throw new InputError(`${image}: ${e.message}`);
        throw e;
      }
      const out = opts.out ?? image.replace(/(\.efi)?$/, ".signed.efi");
      await writeFileAtomic(out, signed);
      console.log(`signed ${image} -> ${out} (${signed.length} bytes)`);
    });
}

function keyBits(value: string): number {
  if (!["2048", "3072", "4096"].includes(value)) throw new InvalidArgumentError("use 2048, 3072 or 4096 (2048 is what every firmware accepts)");
  return Number(value);
}

const days = wholeNumberOption(1, 36500, "give a whole number of days from 1 to 36500");

/** `bronze keys generate`: PK, KEK and db keys and their enrolment files. */
export function registerKeysCommands(program: Command): void {
  const keys = program.command("keys").description("UEFI Secure Boot keys");
  keys
    .command("generate")
    .description("generate PK, KEK and db keys and certificates, EFI signature lists and signed .auth updates for custom-key enrolment; db.key signs UKIs")
    .argument("<dir>", "a new directory (refused if it exists and is not empty)")
    .option("--common-name <name>", "subject prefix of the certificates", "bronze")
    .option("--days <n>", "certificate validity", days, 3650)
    .option("--key-bits <n>", "RSA key size", keyBits, 2048)
    .action(async (dir: string, opts: { commonName: string; days: number; keyBits: number }) => {
      const { generateKeys } = await import("../secureboot/keys.ts");
      const made = await generateKeys(dir, { ...opts, now: new Date() });
      console.log(`keys in ${made.dir} (owner GUID ${made.owner}): ${made.files.join(" ")}`);
      for (const [role, fingerprint] of Object.entries(made.fingerprints)) console.log(`  ${role.padEnd(3)} SHA-256 ${fingerprint}`);
      console.log(`enrol PK.auth, KEK.auth, db.auth in the firmware (setup mode) in the order db, KEK, PK; sign UKIs with db.key and db.crt; noPK.auth returns to setup mode. Keep the .key files offline.`);
    });
}
