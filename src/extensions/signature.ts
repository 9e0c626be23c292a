import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { BronzeError, InputError } from "../core/errors.ts";
import { canonicalBytes, makeBlob, MEDIA_TYPES, type Blob, type Descriptor } from "../oci/image.ts";
import { layoutTar, REF_NAME_ANNOTATION, writeLayoutDir } from "../oci/layout.ts";
import { openLayout, type LayoutReader } from "../oci/layout-read.ts";
import { descriptorsAt, parseObject } from "../oci/descriptor.ts";
import { readTar } from "../oci/tar-read.ts";
import { writeFileAtomic } from "../core/atomic.ts";

// Key-based signatures as cosign stores them (sigstore/cosign specs/SIGNATURE_SPEC.md): a
// "simple signing" payload naming the image digest, signed with ECDSA P-256 over SHA-256, kept
// as a layer of an image manifest tagged sha256-<hex>.sig beside the image; the base64 DER
// signature is that layer's annotation. No transparency log (cosign sign --tlog-upload=false).

export const SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json";
export const SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
const SIGNATURE_TYPE = "cosign container image signature";

/** Where cosign looks for the signatures of `digest`: the tag sha256-<hex>.sig. */
export function signatureTag(digest: string): string {
  return `${digest.replace(":", "-")}.sig`;
}

/** The payload cosign signs for an image: its repository (informative) and its digest (checked). */
export function simpleSigningPayload(reference: string, digest: string): Buffer {
  return Buffer.from(JSON.stringify({ critical: { identity: { "docker-reference": reference }, image: { "docker-manifest-digest": digest }, type: SIGNATURE_TYPE }, optional: null }));
}

function isP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1";
}

/** An ECDSA P-256 private key (PEM, PKCS#8 or SEC1), the kind cosign signs with. */
export async function loadSigningKey(path: string): Promise<KeyObject> {
  const text = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new InputError(`--key ${path}: cannot read it (${e.code ?? e.message})`);
  });
  if (text.includes("ENCRYPTED SIGSTORE PRIVATE KEY") || text.includes("ENCRYPTED COSIGN PRIVATE KEY")) {
    throw new InputError(`--key ${path}: is a password-encrypted cosign key, which bronze does not decrypt; give an unencrypted ECDSA P-256 PEM key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256), whose public half cosign verifies with (cosign verify --key)`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch {
    throw new InputError(`--key ${path}: not a PEM private key; give an unencrypted ECDSA P-256 key`);
  }
  if (!isP256(key)) throw new InputError(`--key ${path}: is a ${key.asymmetricKeyType} key; extension signatures use ECDSA P-256, as cosign's`);
  return key;
}

/** An ECDSA P-256 public key (PEM, as cosign.pub) that a profile trusts. */
export async function loadTrustedKey(path: string): Promise<KeyObject> {
  const text = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new InputError(`${path}: cannot read the public key (${e.code ?? e.message})`);
  });
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch {
    throw new InputError(`${path}: not a PEM public key; give an ECDSA P-256 public key such as cosign.pub`);
  }
  if (!isP256(key)) throw new InputError(`${path}: is a ${key.asymmetricKeyType} key; extension signatures use ECDSA P-256, as cosign's`);
  return key;
}

/** The image's signature manifest: one simple-signing layer per signature, as cosign writes them. */
function signatureManifest(layers: readonly { payload: Blob; signature: string }[]): { manifest: Blob; blobs: Blob[] } {
  const config = makeBlob(
    MEDIA_TYPES.config,
    canonicalBytes({ architecture: "", os: "", config: {}, rootfs: { type: "layers", diff_ids: layers.map((l) => l.payload.descriptor.digest) } }),
  );
  const manifest = makeBlob(
    MEDIA_TYPES.manifest,
    canonicalBytes({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.manifest,
      config: config.descriptor,
      layers: layers.map((l) => ({ ...l.payload.descriptor, annotations: { [SIGNATURE_ANNOTATION]: l.signature } })),
    }),
  );
  return { manifest, blobs: [config, ...layers.map((l) => l.payload)] };
}

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

async function signatureLayers(layout: LayoutReader, signature: Descriptor): Promise<{ payload: Blob; signature: string }[]> {
  const where = `${layout.source}: signature manifest ${signature.digest}`;
  const manifest = parseObject(where, await layout.blob(signature));
  return Promise.all(
    (manifest.layers === undefined ? [] : descriptorsAt(where, manifest, "layers"))
      .filter((l) => l.mediaType === SIMPLE_SIGNING_MEDIA_TYPE)
      .map(async (l) => ({ payload: { descriptor: { mediaType: l.mediaType, digest: l.digest, size: l.size }, data: await layout.blob(l) }, signature: l.annotations?.[SIGNATURE_ANNOTATION] ?? "" })),
  );
}

/**
 * `bronze extension sign`: adds a signature of the layout's image (its index digest) to the
 * layout, under the tag sha256-<hex>.sig; an existing signature manifest keeps its signatures.
 * Returns the signed digest. The layout is rewritten to a temporary name, then renamed.
 */
export async function signLayout(source: string, key: KeyObject, reference: string, epoch: number): Promise<{ digest: string; tag: string }> {
  const layout = await openLayout(source);
  const { root, signature: existing } = rootAndSignature(layout);
  const payload = makeBlob(SIMPLE_SIGNING_MEDIA_TYPE, simpleSigningPayload(reference, root.digest));
  const signature = sign("sha256", payload.data, key).toString("base64");
  const earlier = existing ? await signatureLayers(layout, existing) : [];
  const { manifest, blobs } = signatureManifest([...earlier, { payload, signature }]);
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
  const problems: string[] = [];
  for (const layer of layers) {
    let payload: { critical?: { type?: string; image?: { "docker-manifest-digest"?: string } } };
    try {
      payload = parseObject(`payload ${layer.payload.descriptor.digest}`, layer.payload.data) as typeof payload;
    } catch {
      problems.push(`payload ${layer.payload.descriptor.digest} is not a JSON object`);
      continue;
    }
    if (payload.critical?.type !== SIGNATURE_TYPE) {
      problems.push(`payload ${layer.payload.descriptor.digest} is not a cosign image signature`);
      continue;
    }
    const signed = payload.critical.image?.["docker-manifest-digest"];
    if (signed !== root.digest) {
      problems.push(`a signature is for ${signed ?? "no digest"}, not for this image ${root.digest}`);
      continue;
    }
    const bytes = Buffer.from(layer.signature, "base64");
    const keyIndex = trusted.findIndex((key) => verify("sha256", layer.payload.data, key, bytes));
    if (keyIndex >= 0) return { digest: root.digest, keyIndex };
    problems.push("a signature does not verify with any trusted key (signed by another key, or altered)");
  }
  if (layers.length === 0) problems.push("the signature manifest holds no signature");
  throw new BronzeError(`extension '${name}' (${root.digest}): signature check failed: ${problems.join("; ")}`);
}
