// Extension images signed as cosign signs images (src/oci/cosign.ts), the signature kept in the layout.
import type { KeyObject } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { BronzeError, InputError } from "../core/errors.ts";
import { checkSignatures, readSignatureLayers, signatureManifest, signatureTag, signPayload, type SignatureLayer } from "../oci/cosign.ts";
import { canonicalBytes, MEDIA_TYPES, type Descriptor } from "../oci/image.ts";
import { layoutTar, REF_NAME_ANNOTATION, writeLayoutDir } from "../oci/layout.ts";
import { openLayout, type LayoutReader } from "../oci/layout-read.ts";
import { readTar } from "../oci/tar-read.ts";
import { writeFileAtomic } from "../core/atomic.ts";

/** Every file of a layout directory or tar, by path. */
async function layoutFileMap(source: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  if ((await stat(source)).isDirectory()) {
    for (const entry of await readdir(source, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) files.set(relative(source, join(entry.parentPath, entry.name)), await readFile(join(entry.parentPath, entry.name)));
    }
  } else {
    for (const e of await readTar(await readFile(source))) if (e.type === "file") files.set(e.path, e.data ?? Buffer.alloc(0));
  }
  return files;
}

/** The image a layout holds (its tagged root that is not a signature), and the signature manifest for it, if any. */
function rootAndSignature(layout: LayoutReader): { root: Descriptor; signature?: Descriptor } {
  const roots = layout.index.manifests.filter((m) => !m.annotations?.[REF_NAME_ANNOTATION]?.endsWith(".sig"));
  if (roots.length !== 1) throw new InputError(`${layout.source}: holds ${roots.length} images; an extension layout holds one`);
  const root = roots[0] as Descriptor;
  const signature = layout.index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === signatureTag(root.digest));
  return { root, signature };
}

/** The digest of the image a layout holds (what `bronze extension build` prints, what signatures and profiles name). */
export function imageDigest(layout: LayoutReader): string {
  return rootAndSignature(layout).root.digest;
}

function signatureLayers(layout: LayoutReader, signature: Descriptor): Promise<SignatureLayer[]> {
  return layout.blob(signature).then((bytes) => readSignatureLayers(`${layout.source}: signature manifest ${signature.digest}`, bytes, (d) => layout.blob(d)));
}

/**
 * `bronze extension sign`: adds a signature of the layout's image (its index digest) to the
 * layout, under the tag sha256-<hex>.sig; an existing signature manifest keeps its signatures.
 * Returns the signed digest. The layout is rewritten to a temporary name, then renamed.
 */
export async function signLayout(source: string, key: KeyObject, reference: string, epoch: number): Promise<{ digest: string; tag: string }> {
  const layout = await openLayout(source);
  const { root, signature: existing } = rootAndSignature(layout);
  const earlier = existing ? await signatureLayers(layout, existing) : [];
  const { manifest, blobs } = signatureManifest([...earlier, signPayload(key, reference, root.digest)]);
  const tag = signatureTag(root.digest);
  const files = await layoutFileMap(source);
  for (const blob of [manifest, ...blobs]) files.set(`blobs/${blob.descriptor.digest.replace(":", "/")}`, blob.data);
  const manifests = [...layout.index.manifests.filter((m) => m !== existing), { ...manifest.descriptor, annotations: { [REF_NAME_ANNOTATION]: tag } }];
  files.set("index.json", canonicalBytes({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests }));
  const list = [...files].map(([path, data]) => ({ path, data })).sort((a, b) => (a.path < b.path ? -1 : 1));
  if ((await stat(source)).isDirectory()) {
    await writeLayoutDir(source, list);
  } else {
    await writeFileAtomic(source, layoutTar(list, epoch));
  }
  return { digest: root.digest, tag };
}

export interface VerifiedSignature {
  digest: string;
  /** which trusted key verified it */
  keyIndex: number;
}

/**
 * Verifies that the layout's image carries a signature, by one of `trusted`, of a payload that
 * names its exact digest. Fails naming the extension and what is wrong: unsigned, signed by a
 * key not trusted, or a signature or payload that does not match the image.
 */
export async function verifyLayout(source: string | LayoutReader, trusted: readonly KeyObject[], name: string): Promise<VerifiedSignature> {
  const layout = typeof source === "string" ? await openLayout(source) : source;
  const { root, signature } = rootAndSignature(layout);
  if (!signature) throw new BronzeError(`extension '${name}' (${root.digest}) is not signed: ${layout.source} has no ${signatureTag(root.digest)}; sign it with 'bronze extension sign', or allow it unsigned by name in the profile`);
  const layers = await signatureLayers(layout, signature);
  const checked = checkSignatures(layers, root.digest, trusted);
  if ("keyIndex" in checked) return { digest: root.digest, keyIndex: checked.keyIndex };
  const problems = checked.problems;
  throw new BronzeError(`extension '${name}' (${root.digest}): signature check failed: ${problems.join("; ")}`);
}
