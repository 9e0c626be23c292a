/**
 * Artifacts that refer to an image (OCI 1.1): a manifest whose `subject` names the image, with an empty
 * config and one layer of content (a Sigstore bundle). Registries without the referrers API list them in an
 * index tagged sha256-<hex> (the distribution spec's referrers tag schema), which the client keeps.
 */
import { descriptorsAt, parseObject } from "./descriptor.ts";
import { canonicalBytes, makeBlob, manifestBlob, MEDIA_TYPES, type Blob, type Descriptor } from "./image.ts";

export const EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json";

export interface Referrer {
  manifest: Blob;
  blobs: Blob[];
  /** the manifest's descriptor as a referrers index lists it */
  entry: Descriptor;
}

/** A referrer of `subject` holding `content`, of `artifactType`, annotated for the index that lists it. */
export function referrerArtifact(subject: Descriptor, artifactType: string, content: Blob, annotations: Record<string, string>): Referrer {
  const config = makeBlob(EMPTY_MEDIA_TYPE, Buffer.from("{}"));
  const manifest = manifestBlob(config.descriptor, [content.descriptor], {
    artifactType,
    annotations,
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  });
  return { manifest, blobs: [config, content], entry: { ...manifest.descriptor, artifactType, annotations } };
}

/** The tag under which a registry without the referrers API keeps the referrers of `digest`. */
export function referrersTag(digest: string): string {
  return digest.replace(":", "-").slice(0, 128);
}

/** The referrers an index lists (an answer of the referrers API, or the fallback tag's index). */
export function referrersIn(where: string, index: Buffer): Descriptor[] {
  return descriptorsAt(where, parseObject(where, index), "manifests");
}

/** The referrers index with `entry` added (once), the others kept in their order. */
export function withReferrer(existing: readonly Descriptor[], entry: Descriptor): Blob {
  const manifests = [...existing.filter((d) => d.digest !== entry.digest), entry];
  return makeBlob(MEDIA_TYPES.index, canonicalBytes({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests }));
}
