import { BronzeError } from "../core/errors.ts";
import { MEDIA_TYPES, type Descriptor } from "../oci/image.ts";
import { referrersIn, referrersTag, withReferrer, type Referrer } from "../oci/referrers.ts";
import { putManifest, scopeOf, type RegistryClient } from "./client.ts";
import type { Reference } from "./reference.ts";
import { pushBlob } from "./upload.ts";

const CHUNK_SIZE = 8 * 1024 * 1024;

/** What the registry lists as referring to `digest`: by the referrers API, else by the fallback tag. */
export async function listReferrers(client: RegistryClient, ref: Reference, digest: string): Promise<Descriptor[]> {
  const response = await client.request("GET", `/v2/${ref.repository}/referrers/${digest}`, scopeOf(ref, "pull"), { Accept: MEDIA_TYPES.index });
  const contentType = String(response.headers["content-type"] ?? "");
  if (response.status === 200 && contentType.startsWith(MEDIA_TYPES.index)) return referrersIn(`${client.registry}: referrers of ${digest}`, response.body);
  if (response.status !== 404 && response.status !== 405 && response.status !== 200) throw client.fail(`GET referrers of ${digest}`, response);
  return fallbackReferrers(client, ref, digest);
}

async function fallbackReferrers(client: RegistryClient, ref: Reference, digest: string): Promise<Descriptor[]> {
  const tag = referrersTag(digest);
  const response = await client.request("GET", `/v2/${ref.repository}/manifests/${tag}`, scopeOf(ref, "pull"), { Accept: MEDIA_TYPES.index });
  if (response.status === 404) return [];
  if (response.status !== 200) throw client.fail(`GET manifest ${tag}`, response);
  return referrersIn(`${client.registry}: ${ref.repository}:${tag}`, response.body);
}

/**
 * Stores a referrer: its blobs, its manifest by digest, and (when the registry does not track subjects)
 * the fallback tag's index with it added; then confirms that the registry lists it, so that a caller may
 * tag what it refers to. Two writers at once may lose one entry: the spec's known race, which the
 * confirmation turns into an error rather than a missing signature.
 */
export async function attachReferrer(client: RegistryClient, ref: Reference, subject: string, referrer: Referrer): Promise<void> {
  for (const blob of referrer.blobs) await pushBlob(client, ref, blob.descriptor.digest, () => Promise.resolve(blob.data), { chunkSize: CHUNK_SIZE });
  const answer = await putManifest(client, ref, referrer.manifest.descriptor.digest, MEDIA_TYPES.manifest, referrer.manifest.data);
  if (answer.headers["oci-subject"] !== subject) {
    const index = withReferrer(await fallbackReferrers(client, ref, subject), referrer.entry);
    await putManifest(client, ref, referrersTag(subject), MEDIA_TYPES.index, index.data);
  }
  if (!(await listReferrers(client, ref, subject)).some((d) => d.digest === referrer.entry.digest)) {
    throw new BronzeError(`${client.registry}: referrer ${referrer.entry.digest} of ${subject} is not listed after it was stored; not tagging`);
  }
}
