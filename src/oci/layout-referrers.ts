/**
 * Referrers kept in an OCI image layout: each artifact manifest and its blobs under blobs/, listed in
 * index.json with its artifactType and no tag (as ORAS keeps them). New ones are added blobs first, then
 * index.json, each file replaced whole (a tar is written again whole), so a reader never sees half of one.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.ts";
import { InputError } from "../core/errors.ts";
import type { ReferrerStore } from "../attest/statements.ts";
import { descriptorAt, descriptorsAt, parseObject } from "./descriptor.ts";
import { canonicalBytes, type Blob, type Descriptor } from "./image.ts";
import { layoutTar, REF_NAME_ANNOTATION } from "./layout.ts";
import { distinctImages, layoutImages, openLayout, type LayoutReader } from "./layout-read.ts";
import type { Referrer } from "./referrers.ts";

/** The referrers a layout lists, each with the digest of the image it refers to. */
export async function layoutReferrers(layout: LayoutReader): Promise<{ subject: string; referrer: Referrer }[]> {
  const found: { subject: string; referrer: Referrer }[] = [];
  for (const entry of layout.index.manifests.filter((d) => d.artifactType)) {
    const data = await layout.blob(entry);
    const where = `${layout.source}: referrer ${entry.digest}`;
    const manifest = parseObject(where, data);
    if (manifest.subject === undefined) continue;
    const subject = descriptorAt(where, "subject", manifest.subject).digest;
    const parts = [descriptorAt(where, "config", manifest.config), ...descriptorsAt(where, manifest, "layers")];
    const blobs = await Promise.all(parts.map(async (d) => ({ descriptor: d, data: await layout.blob(d) })));
    found.push({ subject, referrer: { manifest: { descriptor: { mediaType: entry.mediaType, digest: entry.digest, size: entry.size }, data }, blobs, entry } });
  }
  return found;
}

/** The one image a layout holds besides its referrers and cosign's .sig tags. */
export function layoutImage(layout: LayoutReader): Descriptor {
  const images = distinctImages(layoutImages(layout));
  if (images.length !== 1) throw new InputError(`${layout.source}: holds ${images.length} images besides referrers; sign or verify a layout of one image`);
  return images[0] as Descriptor;
}

/** The name a layout's image goes by in statements: its tag (org.opencontainers.image.ref.name), or "oci-layout". */
function imageName(layout: LayoutReader): string {
  const tag = layoutImages(layout).find((d) => d.annotations?.[REF_NAME_ANNOTATION])?.annotations?.[REF_NAME_ANNOTATION];
  return tag ? `oci-layout:${tag}` : "oci-layout";
}

export interface LayoutStore {
  layout: LayoutReader;
  store: ReferrerStore;
  /** writes what was attached; returns how many referrers were added */
  commit: () => Promise<number>;
}

/** The referrers of a layout (directory or tar) as a store; attached ones are written by `commit`, a tar's mtimes `epoch`. */
export async function openLayoutStore(source: string, epoch: number): Promise<LayoutStore> {
  const layout = await openLayout(source);
  // read once: every question of a signing or a verification is answered from these
  const known = await layoutReferrers(layout);
  const pending: { subject: string; referrer: Referrer }[] = [];
  const pendingBlobs = () => pending.flatMap((p) => [p.referrer.manifest, ...p.referrer.blobs]);
  const store: ReferrerStore = {
    name: source,
    // a local path means nothing where the signature goes: the image is named by its tag
    subjectName: imageName(layout),
    referrers: (digest) => Promise.resolve([...known, ...pending].filter((r) => r.subject === digest).map((r) => r.referrer.entry)),
    fetch: (d) => {
      const blob = pendingBlobs().find((b) => b.descriptor.digest === d.digest);
      return blob ? Promise.resolve(blob.data) : layout.blob(d);
    },
    attach: (subject, referrer) => {
      pending.push({ subject: subject.digest, referrer });
      return Promise.resolve();
    },
  };
  const commit = async () => {
    if (pending.length === 0) return 0;
    const files = (await stat(source)).isDirectory() ? undefined : await tarFiles(source);
    const indexBytes = files ? files.get("index.json") : await readFile(join(source, "index.json"));
    const index = parseObject(`${source}: index.json`, indexBytes ?? Buffer.from("{}"));
    const newIndex = canonicalBytes({ ...index, manifests: [...layout.index.manifests, ...pending.map((p) => p.referrer.entry)] });
    const blobPath = (b: Blob) => `blobs/${b.descriptor.digest.replace(":", "/")}`;
    if (files) {
      for (const blob of pendingBlobs()) files.set(blobPath(blob), blob.data);
      files.set("index.json", newIndex);
      await writeFileAtomic(source, layoutTar([...files].map(([path, data]) => ({ path, data })), epoch));
    } else {
      for (const blob of pendingBlobs()) await writeFileAtomic(join(source, blobPath(blob)), blob.data);
      await writeFileAtomic(join(source, "index.json"), newIndex);
    }
    return pending.length;
  };
  return { layout, store, commit };
}

async function tarFiles(source: string): Promise<Map<string, Buffer>> {
  const { readTar } = await import("./tar-read.ts");
  const entries = await readTar(await readFile(source));
  return new Map(entries.filter((e) => e.type === "file").map((e) => [e.path, e.data ?? Buffer.alloc(0)]));
}
