import type { KeyObject } from "node:crypto";
import { bundleFromJSON } from "@sigstore/bundle";
import { toSignedEntity, toTrustMaterial, Verifier } from "@sigstore/verify";
import { keyHint } from "../../src/oci/sigstore.ts";

const EMPTY_ROOT = { mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1", tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] };

/** sigstore-js, which bronze did not write, verifying a bundle offline with the public key its hint names; throws if it does not verify. */
export function independentVerify(bundleBytes: Buffer, publicKey: KeyObject): void {
  const bundle = bundleFromJSON(JSON.parse(bundleBytes.toString()));
  const trust = toTrustMaterial(EMPTY_ROOT, (hint: string) => {
    if (hint !== keyHint(publicKey)) throw new Error(`key not found: ${hint}`);
    return { publicKey, validFor: () => true };
  });
  new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundle));
}
