import type { KeyObject } from "node:crypto";
import { BronzeError } from "../core/errors.ts";
import type { Blob } from "../oci/image.ts";
import { walkImage } from "../oci/image-walk.ts";
import { layoutImage, openLayoutStore, type LayoutStore } from "../oci/layout-referrers.ts";
import { installerAttestations } from "./installer.ts";
import { ensureSigned, requireSignature, type TrustedKey } from "./statements.ts";

/**
 * Signs the image of an OCI layout (directory or tar) in place, and with `attest` a bronze installer's
 * provenance and SBOMs; what this key signed already is not added again. A tar is written with mtimes `epoch`.
 */
export async function signLayout(source: string, key: KeyObject, epoch: number, attest: boolean): Promise<{ digest: string; stored: number; claims: number }> {
  const { layout, store, commit } = await openLayoutStore(source, epoch);
  const root = layoutImage(layout);
  const claims = attest ? await installerAttestations(layout, root, store.subjectName) : [];
  await ensureSigned(store, root, key, claims);
  return { digest: root.digest, stored: await commit(), claims: claims.length + 1 };
}

export interface LayoutVerified {
  digest: string;
  signer: TrustedKey;
  root: Blob;
  opened: LayoutStore;
}

/** The layout's image signed by a trusted key, and every manifest and blob under it matching its digest. */
export async function verifyLayout(source: string, trusted: readonly TrustedKey[]): Promise<LayoutVerified> {
  const opened = await openLayoutStore(source, 0);
  const { layout, store } = opened;
  const root = layoutImage(layout);
  const signer = await requireSignature(store, root, trusted);
  const everyBlob = async () => {
    for (const blob of (await walkImage(root, (d) => layout.blob(d))).blobs) await layout.blob(blob);
  };
  await everyBlob().catch((e: unknown) => {
    throw new BronzeError(`${source}@${root.digest}: signed by ${signer.name}, but its content does not match its digests: ${(e as Error).message}`);
  });
  return { digest: root.digest, signer, root: { descriptor: root, data: await layout.blob(root) }, opened };
}
