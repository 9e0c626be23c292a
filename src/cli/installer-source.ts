import type { Command } from "commander";
import { BronzeError, InputError } from "../core/errors.ts";
import type { InstallerSource } from "../disk/boot-files.ts";
import { registryTarget } from "../registry/reference.ts";
import { connect, connectionOptions, type ConnectionOptions } from "./oci.ts";

export interface InstallerOptions extends ConnectionOptions {
  key?: string[];
  allowUnsigned?: boolean;
}

/** The options of a command that reads an installer from a layout or a registry: trusted keys, and the way out. */
export function installerOptions(command: Command): Command {
  return connectionOptions(
    command
      .option("--key <file...>", "take the installer only signed by one of these public keys (PEM): `bronze sign`, `bronze push --sign-key`, `bronze build --sign-key`; an installer in a registry needs this or --allow-unsigned")
      .option("--allow-unsigned", "take an installer from a registry without checking its signature (its digests are still checked)"),
  );
}

/**
 * Where `flag`'s installer comes from: a local layout (directory or tar) as it is, or a registry reference,
 * pulled into memory after its signature verified against --key (or, with --allow-unsigned, unchecked), with
 * every digest checked. `log` says which it was.
 */
export async function openInstaller(flag: string, spec: string, opts: InstallerOptions, log: (line: string) => void): Promise<InstallerSource> {
  const ref = await registryTarget(spec);
  if (opts.key && opts.allowUnsigned) throw new InputError("--key and --allow-unsigned exclude each other: verify with the keys, or take the installer unchecked");
  const { trustedKeys } = await import("../attest/statements.ts");
  if (!ref) {
    // a layout of one's own is taken as it is; with --key, only signed (bronze sign, bronze build --sign-key)
    if (!opts.key) return spec;
    const { verifyLayout } = await import("../attest/layout.ts");
    const verified = await verifyLayout(spec, await trustedKeys(opts.key));
    log(`${spec}@${verified.digest}: signed by ${verified.signer.name}; every digest checked`);
    return verified.opened.layout;
  }
  if (!opts.key && !opts.allowUnsigned) {
    throw new InputError(`${flag} ${spec} is in a registry: give --key PUBLIC.pem (the key that signed it) to verify it, or --allow-unsigned to take it unchecked`);
  }
  const client = await connect(ref, opts);
  const { memoryLayout } = await import("../oci/layout-read.ts");
  if (opts.key) {
    const { verifyImage } = await import("../registry/signatures.ts");
    const verified = await verifyImage(client, ref, await trustedKeys(opts.key));
    log(`${spec}@${verified.digest}: signed by ${verified.signer.name}; every digest checked`);
    return memoryLayout(`${spec}@${verified.digest}`, verified.image.root.descriptor, verified.image.blobs);
  }
  const { pullImage } = await import("../registry/copy.ts");
  const image = await pullImage(client, ref).catch((e: unknown) => {
    throw e instanceof BronzeError ? e : new BronzeError(`${spec}: ${(e as Error).message}`);
  });
  log(`${spec}@${image.root.descriptor.digest}: NOT verified (--allow-unsigned); its digests checked`);
  return memoryLayout(`${spec}@${image.root.descriptor.digest}`, image.root.descriptor, image.blobs);
}
