/**
 * Signatures kept as cosign keeps them in a registry: a manifest of simple-signing layers tagged
 * sha256-<hex>.sig beside the image it signs. Used by the shared cache and the factory's catalog.
 */
import type { KeyObject } from "node:crypto";
import { BronzeError } from "../core/errors.ts";
import { checkSignatures, readSignatureLayers, signatureManifest, signatureTag, signPayload } from "../oci/cosign.ts";
import { findManifest, getBlob, putManifest, type RegistryClient } from "./client.ts";
import type { Reference } from "./reference.ts";
import { pushBlob } from "./upload.ts";

const CHUNK = 8 * 1024 * 1024;

/** Signs `digest` in `ref`'s repository with `key`, naming the image `name`; the bytes sent. */
export async function putCosignSignature(client: RegistryClient, ref: Reference, digest: string, key: KeyObject, name: string): Promise<number> {
  const signature = signatureManifest([signPayload(key, name, digest)]);
  let sent = 0;
  for (const blob of signature.blobs) sent += await pushBlob(client, ref, blob.descriptor.digest, () => Promise.resolve(blob.data), { chunkSize: CHUNK });
  await putManifest(client, ref, signatureTag(digest), signature.manifest.descriptor.mediaType, signature.manifest.data);
  return sent;
}

/**
 * Why `digest` in `ref`'s repository is not signed by a trusted key (no signature, none by these keys, one
 * that cannot be read); undefined when it is.
 */
export async function cosignSignatureProblem(client: RegistryClient, ref: Reference, digest: string, trusted: readonly KeyObject[]): Promise<string | undefined> {
  const tag = signatureTag(digest);
  try {
    const manifest = await findManifest(client, ref, tag);
    if (!manifest) return `it is not signed (no ${tag})`;
    const layers = await readSignatureLayers(`signature ${tag} in ${client.registry}/${ref.repository}`, manifest.data, (d) => getBlob(client, ref, d.digest, d.size));
    const checked = checkSignatures(layers, digest, trusted);
    return "problems" in checked ? `no signature by a trusted key (${checked.problems.join("; ")})` : undefined;
  } catch (e) {
    if (e instanceof BronzeError) return e.message;
    throw e;
  }
}
