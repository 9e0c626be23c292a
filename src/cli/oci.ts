import { readFile } from "node:fs/promises";
import { text } from "node:stream/consumers";
import type { Command } from "commander";
import { InputError } from "../core/errors.ts";
import { dockerCredentials } from "../registry/auth.ts";
import { RegistryClient } from "../registry/client.ts";
import { sizeOption } from "./size-option.ts";
import { isLoopback, parseReference, type Reference } from "../registry/reference.ts";
import type { Credentials } from "../registry/transport.ts";
import type { CliEnv } from "./commands.ts";

export interface ConnectionOptions {
  username?: string;
  passwordStdin?: boolean;
  caFile?: string;
  plainHttp?: boolean;
  insecure?: boolean;
}

/** tries of a request that may be sent again (questions, manifests): at 30 % faults all fail once in 15,000 */
export const REQUEST_ATTEMPTS = 8;

export async function connect(ref: Reference, opts: ConnectionOptions): Promise<RegistryClient> {
  if (opts.plainHttp && !isLoopback(ref.registry) && !opts.insecure) {
    throw new InputError(`--plain-http sends credentials and images unencrypted; for ${ref.registry}, which is not this machine, add --insecure to really do it`);
  }
  if (opts.passwordStdin && !opts.username) throw new InputError("--password-stdin needs --username");
  let credentials: Credentials | undefined;
  if (opts.username) {
    if (!opts.passwordStdin) throw new InputError("--username needs --password-stdin (the password is read from standard input, never from the command line)");
    credentials = { username: opts.username, password: (await text(process.stdin)).replace(/\r?\n$/, "") };
  } else {
    credentials = await dockerCredentials(ref.registry);
  }
  const ca = opts.caFile
    ? await readFile(opts.caFile).catch(() => {
        throw new InputError(`--ca-file ${opts.caFile ?? ""}: cannot read it; give a PEM file of CA certificates`);
      })
    : undefined;
  return new RegistryClient(
    ref.registry,
    { scheme: opts.plainHttp ? "http" : "https", ca, credentials, attempts: REQUEST_ATTEMPTS, backoffMs: 200 },
    (line) => console.error(`bronze: ${line}`),
  );
}

export function connectionOptions(command: Command): Command {
  return command
    .option("--username <user>", "registry user (else docker's config.json)")
    .option("--password-stdin", "read the password from standard input")
    .option("--ca-file <pem>", "trust these CA certificates for the registry's TLS")
    .option("--plain-http", "speak plain HTTP (allowed for loopback registries; others also need --insecure)")
    .option("--insecure", "allow --plain-http to a registry that is not this machine");
}

/** `bronze push SOURCE REF` and `bronze pull REF DEST`: our own OCI distribution client. */
export function registerOciCommands(program: Command, { projectRoot }: CliEnv): void {
  connectionOptions(
    program
      .command("push")
      .description("push an OCI image layout (directory or .tar) to a registry: missing blobs only, the tag last")
      .argument("<source>", "OCI layout directory or tar, e.g. _out/default/installer")
      .argument("<ref>", "HOST[:PORT]/REPOSITORY[:TAG]")
      .option("--chunk-size <bytes>", "blobs larger than this go up in chunks", sizeOption, 8 * 1024 * 1024)
      .option("--mount-from <repository>", "ask the registry to mount blobs from this repository instead of uploading them")
      .option("--sign-key <file>", "sign the image (as `bronze sign`) and attest a bronze installer (SLSA provenance for the index, SPDX and CycloneDX SBOMs for each platform image) once it is there by digest and before it is tagged; what this key signed already is not added again"),
  ).action(async (source: string, refText: string, opts: ConnectionOptions & { chunkSize: number; mountFrom?: string; signKey?: string }) => {
    const ref = parseReference(refText);
    const key = opts.signKey ? await (await import("../oci/cosign.ts")).loadSigningKey(opts.signKey, "--sign-key") : undefined;
    const client = await connect(ref, opts);
    const { pushLayout } = await import("../registry/copy.ts");
    let signed = "";
    const beforeTag = key ? (await import("../attest/push.ts")).signBeforeTag(client, ref, key, (summary) => (signed = `; ${summary}`)) : undefined;
    const result = await pushLayout(client, source, ref, { chunkSize: opts.chunkSize, mountFrom: opts.mountFrom, beforeTag });
    console.log(`pushed ${ref.registry}/${ref.repository}:${result.tag}@${result.digest}: ${result.blobsUploaded} blob(s) uploaded, ${result.blobsPresent} already there or mounted, ${result.bytesUploaded} bytes sent${signed}`);
  });

  connectionOptions(
    program
      .command("pull")
      .description("pull an image or index into an OCI layout directory (or a .tar), verifying every digest")
      .argument("<ref>", "HOST[:PORT]/REPOSITORY:TAG or @sha256:DIGEST")
      .argument("<dest>", "layout directory, or a path ending in .tar"),
  ).action(async (refText: string, dest: string, opts: ConnectionOptions) => {
    const ref = parseReference(refText);
    const client = await connect(ref, opts);
    const { pullLayout } = await import("../registry/copy.ts");
    // loaded here: it runs git through execa, which a push need not load
    const { sourceDateEpoch } = await import("../core/epoch.ts");
    const result = await pullLayout(client, ref, dest, await sourceDateEpoch(projectRoot).catch(() => 0));
    console.log(`pulled ${refText}@${result.digest} into ${dest}`);
  });
}
