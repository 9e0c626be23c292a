import type { Command } from "commander";
import { sourceDateEpoch } from "../core/epoch.ts";
import { registryTarget } from "../registry/reference.ts";
import type { CliEnv } from "./commands.ts";
import type { ReferrerStore } from "../attest/statements.ts";
import type { Blob } from "../oci/image.ts";
import { connect, connectionOptions, type ConnectionOptions } from "./oci.ts";

/** `bronze sign` and `bronze verify`: image signatures as cosign 3 keeps them (Sigstore bundles, referrers). */
export function registerSignCommands(program: Command, { projectRoot }: CliEnv): void {
  connectionOptions(
    program
      .command("sign")
      .description("sign an image or index with an ECDSA P-256 key: a Sigstore bundle (v0.3) attached as an OCI 1.1 referrer, as `cosign sign --new-bundle-format` stores it; in a registry (listed under the sha256-<hex> tag where it has no referrers API) or in an OCI layout (listed in its index.json)")
      .argument("<target>", "HOST[:PORT]/REPOSITORY:TAG or @sha256:DIGEST, or an OCI layout directory or tar")
      .requiredOption("--key <file>", "unencrypted ECDSA P-256 private key (PEM)")
      .option("--attest", "for a bronze installer layout: also its SLSA provenance and SBOMs (as `bronze build --sign-key` does)"),
  ).action(async (target: string, opts: ConnectionOptions & { key: string; attest?: boolean }) => {
    const { loadSigningKey } = await import("../oci/cosign.ts");
    const key = await loadSigningKey(opts.key);
    const ref = await registryTarget(target);
    if (!ref) {
      const { signLayout } = await import("../attest/layout.ts");
      const signed = await signLayout(target, key, await sourceDateEpoch(projectRoot).catch(() => 0), opts.attest ?? false);
      console.log(`signed ${target}@${signed.digest}: ${signed.stored} of ${signed.claims} statement(s) added (the others were there)`);
      return;
    }
    const { signImage } = await import("../registry/signatures.ts");
    const signed = await signImage(await connect(ref, opts), ref, key);
    console.log(`signed ${ref.registry}/${ref.repository}@${signed.digest}: bundle ${signed.bundle} in referrer ${signed.referrer}, key ${signed.hint.slice(0, 16)}`);
  });

  connectionOptions(
    program
      .command("verify")
      .description("verify an image or index in a registry: a Sigstore bundle referring to its digest signed by one of the keys, then every manifest and blob under it hashed; exit 1 naming the digest and the keys tried")
      .argument("<target>", "HOST[:PORT]/REPOSITORY:TAG or @sha256:DIGEST, or an OCI layout directory or tar")
      .requiredOption("--key <file...>", "trusted ECDSA P-256 public key(s) (PEM, as cosign.pub)")
      .option("--attestations", "also require signed attestations (SLSA provenance of the image, SPDX and CycloneDX SBOMs of each platform image) and print the provenance's materials"),
  ).action(async (target: string, opts: ConnectionOptions & { key: string[]; attestations?: boolean }) => {
    const { trustedKeys, verifyAttestations } = await import("../attest/statements.ts");
    const trusted = await trustedKeys(opts.key);
    let checked: { store: ReferrerStore; root: Blob };
    const ref = await registryTarget(target);
    if (!ref) {
      const { verifyLayout } = await import("../attest/layout.ts");
      const verified = await verifyLayout(target, trusted);
      console.log(`verified ${target}@${verified.digest}: signed by ${verified.signer.name}; every manifest and blob matches its digest`);
      checked = { store: verified.opened.store, root: verified.root };
    } else {
      const { verifyImage, registryStore } = await import("../registry/signatures.ts");
      const client = await connect(ref, opts);
      const verified = await verifyImage(client, ref, trusted);
      console.log(`verified ${ref.registry}/${ref.repository}@${verified.digest}: signed by ${verified.signer.name}; ${verified.image.blobs.length + 1} manifests and blobs match their digests`);
      checked = { store: registryStore(client, ref), root: verified.image.root };
    }
    if (!opts.attestations) return;
    const attested = await verifyAttestations(checked.store, checked.root, trusted);
    for (const sbom of attested.sboms) console.log(`sbom ${sbom.predicateType} of ${sbom.image}: signed by ${sbom.signer.name}`);
    console.log(`provenance (https://slsa.dev/provenance/v1): signed by ${attested.provenanceSigner.name}; ${attested.materials.length} materials:`);
    for (const m of attested.materials) console.log(`  ${m.name} ${Object.entries(m.digest).map(([k, v]) => `${k}:${v}`).join(" ")}`);
  });
}
