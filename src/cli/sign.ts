import type { Command } from "commander";
import { parseReference } from "../registry/reference.ts";
import type { CliEnv } from "./commands.ts";
import { connect, connectionOptions, type ConnectionOptions } from "./oci.ts";

/** `bronze sign REF` and `bronze verify REF`: image signatures as cosign 3 keeps them (Sigstore bundles, referrers). */
export function registerSignCommands(program: Command, _env: CliEnv): void {
  connectionOptions(
    program
      .command("sign")
      .description("sign an image or index in a registry with an ECDSA P-256 key: a Sigstore bundle (v0.3) attached as an OCI 1.1 referrer (and listed under the sha256-<hex> tag for registries without the referrers API), as `cosign sign --new-bundle-format` stores it")
      .argument("<ref>", "HOST[:PORT]/REPOSITORY:TAG or @sha256:DIGEST")
      .requiredOption("--key <file>", "unencrypted ECDSA P-256 private key (PEM)"),
  ).action(async (refText: string, opts: ConnectionOptions & { key: string }) => {
    const { loadSigningKey } = await import("../oci/cosign.ts");
    const { signImage } = await import("../registry/signatures.ts");
    const key = await loadSigningKey(opts.key);
    const ref = parseReference(refText);
    const signed = await signImage(await connect(ref, opts), ref, key);
    console.log(`signed ${ref.registry}/${ref.repository}@${signed.digest}: bundle ${signed.bundle} in referrer ${signed.referrer}, key ${signed.hint.slice(0, 16)}`);
  });

  connectionOptions(
    program
      .command("verify")
      .description("verify an image or index in a registry: a Sigstore bundle referring to its digest signed by one of the keys, then every manifest and blob under it hashed; exit 1 naming the digest and the keys tried")
      .argument("<ref>", "HOST[:PORT]/REPOSITORY:TAG or @sha256:DIGEST")
      .requiredOption("--key <file...>", "trusted ECDSA P-256 public key(s) (PEM, as cosign.pub)")
      .option("--attestations", "also require signed attestations (SLSA provenance of the image, SPDX and CycloneDX SBOMs of each platform image) and print the provenance's materials"),
  ).action(async (refText: string, opts: ConnectionOptions & { key: string[]; attestations?: boolean }) => {
    const { loadTrustedKey } = await import("../oci/cosign.ts");
    const { verifyImage } = await import("../registry/signatures.ts");
    const trusted = await Promise.all(opts.key.map(async (name) => ({ name, key: await loadTrustedKey(name) })));
    const ref = parseReference(refText);
    const client = await connect(ref, opts);
    const verified = await verifyImage(client, ref, trusted);
    console.log(`verified ${ref.registry}/${ref.repository}@${verified.digest}: signed by ${verified.signer.name}; ${verified.image.blobs.length + 1} manifests and blobs match their digests`);
    if (!opts.attestations) return;
    const { verifyAttestations } = await import("../registry/signatures.ts");
    const attested = await verifyAttestations(client, ref, verified.image.root, trusted);
    for (const sbom of attested.sboms) console.log(`sbom ${sbom.predicateType} of ${sbom.image}: signed by ${sbom.signer.name}`);
    console.log(`provenance (https://slsa.dev/provenance/v1): signed by ${attested.provenanceSigner.name}; ${attested.materials.length} materials:`);
    for (const m of attested.materials) console.log(`  ${m.name} ${Object.entries(m.digest).map(([k, v]) => `${k}:${v}`).join(" ")}`);
  });
}
