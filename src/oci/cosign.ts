/**
 * Key-based signatures as cosign stores them (sigstore/cosign specs/SIGNATURE_SPEC.md): a "simple signing"
 * payload naming the image digest, signed with ECDSA P-256 over SHA-256, kept as a layer of an image
 * manifest tagged sha256-<hex>.sig beside the image; the base64 DER signature is that layer's annotation.
 * No transparency log (cosign sign --tlog-upload=false). Extensions and shared-cache entries are signed so.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { InputError } from "../core/errors.ts";
import { descriptorsAt, parseObject } from "./descriptor.ts";
import { canonicalBytes, makeBlob, manifestBlob, MEDIA_TYPES, type Blob, type Descriptor } from "./image.ts";

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

/** A signature of `digest` by `key`: the payload blob and its signature, as one layer of a signature manifest. */
export function signPayload(key: KeyObject, reference: string, digest: string): SignatureLayer {
  const payload = makeBlob(SIMPLE_SIGNING_MEDIA_TYPE, simpleSigningPayload(reference, digest));
  return { payload, signature: sign("sha256", payload.data, key).toString("base64") };
}

export interface SignatureLayer {
  payload: Blob;
  /** base64 DER */
  signature: string;
}

function isP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1";
}

/** An ECDSA P-256 private key (PEM, PKCS#8 or SEC1), the kind cosign signs with. */
export async function loadSigningKey(path: string, flag = "--key"): Promise<KeyObject> {
  const text = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new InputError(`${flag} ${path}: cannot read it (${e.code ?? e.message})`);
  });
  if (text.includes("ENCRYPTED SIGSTORE PRIVATE KEY") || text.includes("ENCRYPTED COSIGN PRIVATE KEY")) {
    throw new InputError(`${flag} ${path}: is a password-encrypted cosign key, which bronze does not decrypt; give an unencrypted ECDSA P-256 PEM key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256), whose public half cosign verifies with (cosign verify --key)`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch {
    throw new InputError(`${flag} ${path}: not a PEM private key; give an unencrypted ECDSA P-256 key`);
  }
  if (!isP256(key)) throw new InputError(`${flag} ${path}: is a ${key.asymmetricKeyType} key; bronze's signatures are ECDSA P-256, as cosign's`);
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
  if (!isP256(key)) throw new InputError(`${path}: is a ${key.asymmetricKeyType} key; bronze's signatures are ECDSA P-256, as cosign's`);
  return key;
}

/** The image's signature manifest: one simple-signing layer per signature, as cosign writes them. */
export function signatureManifest(layers: readonly SignatureLayer[]): { manifest: Blob; blobs: Blob[] } {
  const config = makeBlob(
    MEDIA_TYPES.config,
    canonicalBytes({ architecture: "", os: "", config: {}, rootfs: { type: "layers", diff_ids: layers.map((l) => l.payload.descriptor.digest) } }),
  );
  const manifest = manifestBlob(
    config.descriptor,
    layers.map((l) => ({ ...l.payload.descriptor, annotations: { [SIGNATURE_ANNOTATION]: l.signature } })),
  );
  return { manifest, blobs: [config, ...layers.map((l) => l.payload)] };
}

/**
 * The signatures a signature manifest holds (its simple-signing layers, each payload fetched through `blob`,
 * from a layout or a registry); `where` names the manifest in errors.
 */
export async function readSignatureLayers(where: string, manifestBytes: Buffer, blob: (d: Descriptor) => Promise<Buffer>): Promise<SignatureLayer[]> {
  const manifest = parseObject(where, manifestBytes);
  const layers = manifest.layers === undefined ? [] : descriptorsAt(where, manifest, "layers");
  return Promise.all(
    layers
      .filter((l) => l.mediaType === SIMPLE_SIGNING_MEDIA_TYPE)
      .map(async (l) => ({ payload: { descriptor: { mediaType: l.mediaType, digest: l.digest, size: l.size }, data: await blob(l) }, signature: l.annotations?.[SIGNATURE_ANNOTATION] ?? "" })),
  );
}

/** Whether one of the layers is a signature by a trusted key of a payload naming exactly `digest`; else what each is. */
export function checkSignatures(layers: readonly SignatureLayer[], digest: string, trusted: readonly KeyObject[]): { keyIndex: number } | { problems: string[] } {
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
    if (signed !== digest) {
      problems.push(`a signature is for ${signed ?? "no digest"}, not for this image ${digest}`);
      continue;
    }
    const bytes = Buffer.from(layer.signature, "base64");
    const keyIndex = trusted.findIndex((key) => verify("sha256", layer.payload.data, key, bytes));
    if (keyIndex >= 0) return { keyIndex };
    problems.push("a signature does not verify with any trusted key (signed by another key, or altered)");
  }
  if (layers.length === 0) problems.push("the signature manifest holds no signature");
  return { problems };
}
