import { stat } from "node:fs/promises";
import type { Command } from "commander";
import { BronzeError, InputError } from "../core/errors.ts";
import type { InstallerSource } from "../disk/boot-files.ts";
import { parseReference } from "../registry/reference.ts";
import { connect, connectionOptions, type ConnectionOptions } from "./oci.ts";

export interface InstallerOptions extends ConnectionOptions {
  key?: string[];
  allowUnsigned?: boolean;
}

/** The options of a command that reads an installer from a layout or a registry: trusted keys, and the way out. */
export function installerOptions(command: Command): Command {
  return connectionOptions(
    command
      .option("--key <file...>", "for an installer in a registry: the public key(s) (PEM) one of which must have signed it (`bronze sign`, `bronze push --sign-key`)")
      .option("--allow-unsigned", "take an installer from a registry without checking its signature (its digests are still checked)"),
  );
}

/**
 * Where `flag`'s installer comes from: a local layout (directory or tar) as it is, or a registry reference,
 * pulled into memory after its signature verified against --key (or, with --allow-unsigned, unchecked), with
 * every digest checked. `log` says which it was.
 */
export async function openInstaller(flag: string, spec: string, opts: InstallerOptions, log: (line: string) => void): Promise<InstallerSource> {
  const local = await stat(spec).then(
    () => true,
    () => false,
  );
  if (local) {
    if (opts.key || opts.allowUnsigned) throw new InputError(`${flag} ${spec} is a local layout: --key and --allow-unsigned are for installers in a registry (HOST/REPO:TAG)`);
    return spec;
  }
  if (!spec.includes("/") || spec.startsWith("/") || spec.startsWith(".")) {
    throw new InputError(`${flag} ${spec}: no such file or directory; give an OCI layout (directory or tar) or a registry reference HOST[:PORT]/REPO:TAG`);
  }
  const ref = parseReference(spec);
  if (opts.key && opts.allowUnsigned) throw new InputError("--key and --allow-unsigned exclude each other: verify with the keys, or take the installer unchecked");
  if (!opts.key && !opts.allowUnsigned) {
    throw new InputError(`${flag} ${spec} is in a registry: give --key PUBLIC.pem (the key that signed it) to verify it, or --allow-unsigned to take it unchecked`);
  }
  const client = await connect(ref, opts);
  const { memoryLayout } = await import("../oci/layout-read.ts");
  if (opts.key) {
    const { loadTrustedKey } = await import("../oci/cosign.ts");
    const { verifyImage } = await import("../registry/signatures.ts");
    const trusted = await Promise.all(opts.key.map(async (name) => ({ name, key: await loadTrustedKey(name) })));
    const verified = await verifyImage(client, ref, trusted);
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
