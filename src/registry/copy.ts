import { BronzeError, InputError } from "../core/errors.ts";
import { type Blob, type Descriptor } from "../oci/image.ts";
import { layoutFiles, layoutTar, REF_NAME_ANNOTATION, writeLayoutDir } from "../oci/layout.ts";
import { distinctImages, openLayout, type LayoutReader } from "../oci/layout-read.ts";
import { walkImage } from "../oci/image-walk.ts";
import { getBlob, getManifest, hasBlob, hasManifest, headManifest, putManifest, type RegistryClient } from "./client.ts";
import { pushBlob } from "./upload.ts";
import { attachReferrer } from "./referrers.ts";
import { layoutReferrers } from "../oci/layout-referrers.ts";
import type { Reference } from "./reference.ts";
import { writeFileAtomic } from "../core/atomic.ts";

function rootOf(layout: LayoutReader, tag: string | undefined): Descriptor {
  const named = tag ? layout.index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] === tag) : [];
  // referrers (signatures, attestations) go up with the image they refer to, not as images of their own
  const candidates = distinctImages((named.length ? named : layout.index.manifests).filter((d) => !d.artifactType));
  if (candidates.length !== 1) {
    throw new InputError(`${layout.source}: holds ${candidates.length} images; tag the one to push in the layout, or name it with the reference's tag`);
  }
  return candidates[0] as Descriptor;
}

export interface PushResult {
  digest: string;
  tag: string;
  blobsUploaded: number;
  blobsPresent: number;
  bytesUploaded: number;
}

/** Blobs uploaded at the same time, as other registry clients do. */
const BLOB_CONCURRENCY = 4;

/** Runs `work` on every item, at most `limit` at a time; results in item order. */
async function inParallel<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await work(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Pushes an OCI layout (directory or tar): blobs the registry lacks, manifests by digest, then `beforeTag`
 * (signing: the image is there by digest, not yet by name), then the tag, last.
 */
export async function pushLayout(
  client: RegistryClient,
  source: string,
  ref: Reference,
  options: { chunkSize: number; mountFrom?: string; beforeTag?: (root: Descriptor, layout: LayoutReader) => Promise<void> },
): Promise<PushResult> {
  const layout = await openLayout(source);
  const root = rootOf(layout, ref.tag);
  const tag = ref.tag ?? root.annotations?.[REF_NAME_ANNOTATION];
  if (!tag && !ref.digest) throw new InputError(`no tag: give one in the reference (HOST/REPO:TAG) or tag the image in ${source}`);
  const { manifests, blobs } = await walkImage(root, (d) => layout.blob(d));
  // a registry takes a manifest only once all it names is there: a tag that already names this
  // image needs nothing sent (a re-push of an unchanged image is one question)
  // what the layout holds about the image (signatures, attestations) goes up before the tag too
  const beforeTag = async () => {
    const about = new Set(manifests.map((m) => m.descriptor.digest));
    for (const { subject, referrer } of await layoutReferrers(layout)) {
      if (about.has(subject)) await attachReferrer(client, ref, subject, referrer);
    }
    await options.beforeTag?.(root, layout);
  };
  if (tag && (await headManifest(client, ref, tag)).digest === root.digest) {
    await beforeTag();
    return { digest: root.digest, tag, blobsUploaded: 0, blobsPresent: blobs.length, bytesUploaded: 0 };
  }
  const sent = await inParallel(blobs, BLOB_CONCURRENCY, (blob) => pushBlob(client, ref, blob.digest, () => layout.blob(blob), options));
  const uploaded = sent.filter((n) => n > 0).length;
  const bytes = sent.reduce((a, b) => a + b, 0);
  // children before the index that names them
  const put: Blob[] = [];
  for (const manifest of manifests) {
    if (await hasManifest(client, ref, manifest.descriptor.digest)) continue;
    await putManifest(client, ref, manifest.descriptor.digest, manifest.descriptor.mediaType, manifest.data);
    put.push(manifest);
  }
  // the tag goes last, and only once everything it needs is confirmed there: what was found there was
  // confirmed by the question; what was sent is asked for again
  await Promise.all([
    ...blobs.filter((_, i) => (sent[i] ?? 0) > 0).map(async (blob) => {
      if (!(await hasBlob(client, ref, blob.digest))) throw new BronzeError(`${client.registry}: blob ${blob.digest} is missing after upload; not tagging`);
    }),
    ...put.map(async (m) => {
      if (!(await hasManifest(client, ref, m.descriptor.digest))) throw new BronzeError(`${client.registry}: manifest ${m.descriptor.digest} is missing; not tagging`);
    }),
  ]);
  await beforeTag();
  const rootBlob = manifests.at(-1) as Blob;
  if (tag) await putManifest(client, ref, tag, root.mediaType, rootBlob.data);
  return { digest: root.digest, tag: tag ?? "", blobsUploaded: uploaded, blobsPresent: blobs.length - uploaded, bytesUploaded: bytes };
}

/** The image REF names (a manifest or an index) with every manifest and blob under it; every digest verified. `fetched`: its root, read already. */
export async function pullImage(client: RegistryClient, ref: Reference, fetched?: { mediaType: string; data: Buffer; digest: string }): Promise<{ root: Blob; blobs: Blob[] }> {
  const reference = ref.digest ?? ref.tag;
  if (!reference) throw new InputError(`name a tag or digest to pull (HOST/REPO:TAG)`);
  // a caller that read the root already (to check its signature) passes it: it is not fetched twice
  const root = fetched ?? (await getManifest(client, ref, reference));
  if (ref.digest && root.digest !== ref.digest) throw new BronzeError(`${client.registry}: manifest digest ${root.digest} is not the requested ${ref.digest}`);
  const rootDescriptor: Descriptor = { mediaType: root.mediaType, digest: root.digest, size: root.data.length };
  const cache = new Map<string, Buffer>([[root.digest, root.data]]);
  const { manifests, blobs } = await walkImage(rootDescriptor, async (d) => cache.get(d.digest) ?? (await getManifest(client, ref, d.digest)).data);
  const blobData: Blob[] = [];
  for (const blob of blobs) blobData.push({ descriptor: blob, data: await getBlob(client, ref, blob.digest, blob.size) });
  return { root: { descriptor: rootDescriptor, data: root.data }, blobs: [...manifests, ...blobData] };
}

/** Pulls REF into an OCI layout directory, or a tar when DEST ends in .tar; every digest verified. */
export async function pullLayout(client: RegistryClient, ref: Reference, dest: string, epoch: number): Promise<{ digest: string; files: number }> {
  const { root, blobs } = await pullImage(client, ref);
  const files = layoutFiles(root, blobs, ref.tag ?? root.descriptor.digest.slice(7, 19));
  if (dest.endsWith(".tar")) {
    await writeFileAtomic(dest, layoutTar(files, epoch));
  } else {
    await writeLayoutDir(dest, files);
  }
  return { digest: root.descriptor.digest, files: files.length };
}
