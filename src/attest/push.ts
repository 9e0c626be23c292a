import type { KeyObject } from "node:crypto";
import type { Descriptor } from "../oci/image.ts";
import type { LayoutReader } from "../oci/layout-read.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { Reference } from "../registry/reference.ts";

/**
 * What a signed push does once the image is there by digest and before it is tagged: sign it and attest a
 * bronze installer (SLSA provenance for the index, SPDX and CycloneDX SBOMs for each platform image), adding
 * only what this key has not signed already. `report` gets the line saying what was stored.
 */
export function signBeforeTag(client: RegistryClient, ref: Reference, key: KeyObject, report: (summary: string) => void) {
  return async (root: Descriptor, layout: LayoutReader): Promise<void> => {
    const { ensureSigned } = await import("./statements.ts");
    const { registryStore } = await import("../registry/signatures.ts");
    const { installerAttestations } = await import("./installer.ts");
    const store = registryStore(client, ref);
    const claims = await installerAttestations(layout, root, store.subjectName);
    const stored = await ensureSigned(store, root, key, claims);
    const what = `signature and ${claims.length} attestation(s)`;
    report(stored ? `${what}: ${stored} signed and stored` : `${what} already there`);
  };
}
