import type { KeyObject } from "node:crypto";
import { BronzeError, InputError } from "../core/errors.ts";
import { attachClaim, requireSignature, signatureClaim, type ReferrerStore, type TrustedKey } from "../attest/statements.ts";
import { MEDIA_TYPES, type Blob, type Descriptor } from "../oci/image.ts";
import { keyHint } from "../oci/sigstore.ts";
import { getBlob, getManifest, type RegistryClient } from "./client.ts";
import { pullImage } from "./copy.ts";
import type { Reference } from "./reference.ts";
import { attachReferrer, listReferrers } from "./referrers.ts";

/** A repository's referrers: the referrers API, or the sha256-<hex> tag where the registry has none. */
export function registryStore(client: RegistryClient, ref: Reference): ReferrerStore {
  return {
    name: `${client.registry}/${ref.repository}`,
    subjectName: `${client.registry}/${ref.repository}`,
    referrers: (digest) => listReferrers(client, ref, digest),
    fetch: async (d) => (d.mediaType === MEDIA_TYPES.manifest || d.mediaType === MEDIA_TYPES.index ? (await getManifest(client, ref, d.digest)).data : getBlob(client, ref, d.digest, d.size)),
    attach: (subject, referrer) => attachReferrer(client, ref, subject.digest, referrer),
  };
}

/** The image REF names: its manifest, and its descriptor (the digest a signature is for). */
async function resolve(client: RegistryClient, ref: Reference): Promise<{ descriptor: Descriptor; manifest: Awaited<ReturnType<typeof getManifest>> }> {
  const reference = ref.digest ?? ref.tag;
  if (!reference) throw new InputError("name a tag or digest (HOST/REPO:TAG or HOST/REPO@sha256:…)");
  const manifest = await getManifest(client, ref, reference);
  return { descriptor: { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.data.length }, manifest };
}

/** Signs the image REF names. */
export async function signImage(client: RegistryClient, ref: Reference, key: KeyObject): Promise<{ digest: string; bundle: string; referrer: string; hint: string }> {
  const subject = (await resolve(client, ref)).descriptor;
  const store = registryStore(client, ref);
  return { digest: subject.digest, ...(await attachClaim(store, signatureClaim(store, subject), key)), hint: keyHint(key) };
}

export interface Verified {
  digest: string;
  signer: TrustedKey;
  /** the image, every manifest and blob fetched and found to hash to its digest */
  image: { root: Blob; blobs: Blob[] };
}

/**
 * Verifies the image REF names: a Sigstore bundle referring to its digest, signed by a trusted key, then
 * every manifest and blob under that digest fetched and hashed. Any failure names the digest and the keys.
 */
export async function verifyImage(client: RegistryClient, ref: Reference, trusted: readonly TrustedKey[]): Promise<Verified> {
  const { descriptor: subject, manifest } = await resolve(client, ref);
  const store = registryStore(client, ref);
  const signer = await requireSignature(store, subject, trusted);
  const image = await pullImage(client, { ...ref, digest: subject.digest }, manifest).catch((e: unknown) => {
    throw new BronzeError(`${store.name}@${subject.digest}: signed by ${signer.name}, but its content does not match its digests: ${(e as Error).message}`);
  });
  return { digest: subject.digest, signer, image };
}
