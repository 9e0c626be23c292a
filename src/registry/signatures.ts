import { createPublicKey, type KeyObject } from "node:crypto";
import { BronzeError, InputError } from "../core/errors.ts";
import { descriptorsAt, parseObject } from "../oci/descriptor.ts";
import { PLATFORM_PREDICATES } from "../attest/installer.ts";
import { materialsIn, PROVENANCE_PREDICATE, type Material } from "../attest/provenance.ts";
import { digestOf, makeBlob, MEDIA_TYPES, type Blob, type Descriptor } from "../oci/image.ts";
import { referrerArtifact } from "../oci/referrers.ts";
import { BUNDLE_MEDIA_TYPE, checkBundle, IMAGE_SIGNATURE_PREDICATE, keyHint, signStatement, statementBytes, type Statement } from "../oci/sigstore.ts";
import { getBlob, getManifest, type RegistryClient } from "./client.ts";
import { pullImage } from "./copy.ts";
import type { Reference } from "./reference.ts";
import { attachReferrer, listReferrers } from "./referrers.ts";

export interface TrustedKey {
  /** where it came from, for messages (a file's path) */
  name: string;
  key: KeyObject;
}

/** The image REF names, as its manifest's descriptor (the digest a signature is for). */
async function resolve(client: RegistryClient, ref: Reference): Promise<Descriptor> {
  const reference = ref.digest ?? ref.tag;
  if (!reference) throw new InputError("name a tag or digest (HOST/REPO:TAG or HOST/REPO@sha256:…)");
  const manifest = await getManifest(client, ref, reference);
  return { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.data.length };
}

const repositoryName = (client: RegistryClient, ref: Reference) => `${client.registry}/${ref.repository}`;
const keysTried = (trusted: readonly TrustedKey[]) => trusted.map((t) => `${t.name} (${keyHint(t.key).slice(0, 16)})`).join(", ");

/** The statement an image signature signs (cosign 3's): this repository's image of that digest. */
function signatureStatement(client: RegistryClient, ref: Reference, subject: Descriptor): Buffer {
  return statementBytes([{ name: repositoryName(client, ref), digest: subject.digest }], IMAGE_SIGNATURE_PREDICATE, {});
}

/** Attaches `statement` about `subject`, signed by `key`, as cosign 3 does: a Sigstore bundle referring to it. */
async function attachStatement(client: RegistryClient, ref: Reference, subject: Descriptor, key: KeyObject, predicateType: string, statement: Buffer): Promise<{ bundle: string; referrer: string }> {
  const bundle = makeBlob(BUNDLE_MEDIA_TYPE, signStatement(key, statement));
  const referrer = referrerArtifact(subject, BUNDLE_MEDIA_TYPE, bundle, {
    "dev.sigstore.bundle.content": "dsse-envelope",
    "dev.sigstore.bundle.predicateType": predicateType,
  });
  await attachReferrer(client, ref, subject.digest, referrer);
  return { bundle: bundle.descriptor.digest, referrer: referrer.manifest.descriptor.digest };
}

/** Signs the image REF names. */
export async function signImage(client: RegistryClient, ref: Reference, key: KeyObject): Promise<{ digest: string; bundle: string; referrer: string; hint: string }> {
  const subject = await resolve(client, ref);
  const attached = await attachStatement(client, ref, subject, key, IMAGE_SIGNATURE_PREDICATE, signatureStatement(client, ref, subject));
  return { digest: subject.digest, ...attached, hint: keyHint(key) };
}

/** A statement to sign about `subject`, of `predicateType`. */
export interface Claim {
  subject: Descriptor;
  predicateType: string;
  statement: Buffer;
}

/**
 * Makes sure each claim (the image signature first) is in the registry signed by `key`, storing only those
 * that are not (a re-push adds nothing), and confirms each by reading it back: what a push does before it
 * tags. Returns how many were stored.
 */
export async function ensureSigned(client: RegistryClient, ref: Reference, root: Descriptor, key: KeyObject, attestations: readonly Claim[] = []): Promise<number> {
  const own = [{ name: "the signing key", key: createPublicKey(key) }];
  const claims = [{ subject: root, predicateType: IMAGE_SIGNATURE_PREDICATE, statement: signatureStatement(client, ref, root) }, ...attestations];
  let stored = 0;
  for (const claim of claims) {
    const present = new Set((await findStatements(client, ref, claim.subject, own, claim.predicateType)).found.map((f) => f.statementDigest));
    if (present.has(digestOf(claim.statement))) continue;
    await attachStatement(client, ref, claim.subject, key, claim.predicateType, claim.statement);
    const after = await findStatements(client, ref, claim.subject, own, claim.predicateType);
    if (!after.found.some((f) => f.statementDigest === digestOf(claim.statement))) {
      throw new BronzeError(`${client.registry}: the ${claim.predicateType} statement about ${claim.subject.digest} is not there after it was stored (${after.problems.join("; ") || "not listed"}); not tagging`);
    }
    stored++;
  }
  return stored;
}

interface Found {
  signer: TrustedKey;
  statement: Statement;
  statementDigest: string;
}

/** The Sigstore bundles referring to `subject` with a `predicateType` statement that verify with a trusted key, and what is wrong with the others. */
async function findStatements(client: RegistryClient, ref: Reference, subject: Descriptor, trusted: readonly TrustedKey[], predicateType: string): Promise<{ found: Found[]; problems: string[]; bundles: number }> {
  const problems: string[] = [];
  const found: Found[] = [];
  const bundles = (await listReferrers(client, ref, subject.digest)).filter(
    (d) => d.artifactType === BUNDLE_MEDIA_TYPE && (d.annotations?.["dev.sigstore.bundle.predicateType"] ?? predicateType) === predicateType,
  );
  for (const referrer of bundles) {
    const where = `referrer ${referrer.digest}`;
    const manifest = parseObject(where, (await getManifest(client, ref, referrer.digest)).data);
    const about = (manifest.subject as { digest?: unknown } | undefined)?.digest;
    if (about !== subject.digest) {
      problems.push(`${where} is about ${String(about)}, not this image`);
      continue;
    }
    const layer = descriptorsAt(where, manifest, "layers").find((l) => l.mediaType === BUNDLE_MEDIA_TYPE);
    if (!layer) {
      problems.push(`${where} holds no Sigstore bundle layer`);
      continue;
    }
    const check = checkBundle(`bundle ${layer.digest}`, await getBlob(client, ref, layer.digest, layer.size), trusted.map((t) => t.key), subject.digest, predicateType);
    if ("keyIndex" in check) found.push({ signer: trusted[check.keyIndex] as TrustedKey, statement: check.statement, statementDigest: check.statementDigest });
    else problems.push(check.problem);
  }
  return { found, problems, bundles: bundles.length };
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
  const subject = await resolve(client, ref);
  const search = await findStatements(client, ref, subject, trusted, IMAGE_SIGNATURE_PREDICATE);
  const name = `${repositoryName(client, ref)}@${subject.digest}`;
  const signer = search.found[0]?.signer;
  if (!signer) {
    const why = search.bundles === 0 ? "no signature refers to it (sign it with `bronze sign`, or pass --allow-unsigned where a consumer offers it)" : search.problems.join("; ");
    throw new BronzeError(`${name}: not verified: ${why}; keys tried: ${keysTried(trusted)}`);
  }
  const image = await pullImage(client, { ...ref, digest: subject.digest }).catch((e: unknown) => {
    throw new BronzeError(`${name}: signed by ${signer.name}, but its content does not match its digests: ${(e as Error).message}`);
  });
  return { digest: subject.digest, signer, image };
}

export interface AttestationsVerified {
  provenanceSigner: TrustedKey;
  materials: Material[];
  /** each platform image's SBOM statements: which image, which format, signed by whom */
  sboms: { image: string; predicateType: string; signer: TrustedKey }[];
}

/**
 * The attestations a verified installer must carry, each signed by a trusted key: SLSA provenance for the
 * root (its materials returned), and an SPDX and a CycloneDX SBOM for each platform image.
 */
export async function verifyAttestations(client: RegistryClient, ref: Reference, root: Blob, trusted: readonly TrustedKey[]): Promise<AttestationsVerified> {
  const name = `${repositoryName(client, ref)}@${root.descriptor.digest}`;
  const need = async (subject: Descriptor, predicateType: string): Promise<Found> => {
    const search = await findStatements(client, ref, subject, trusted, predicateType);
    const first = search.found[0];
    if (!first) throw new BronzeError(`${name}: no ${predicateType} attestation of ${subject.digest} verifies${search.problems.length ? ` (${search.problems.join("; ")})` : ""}; keys tried: ${keysTried(trusted)}`);
    return first;
  };
  const provenance = await need(root.descriptor, PROVENANCE_PREDICATE);
  const materials = materialsIn(`${name}: provenance`, provenance.statement.predicate);
  const platforms = root.descriptor.mediaType === MEDIA_TYPES.index ? descriptorsAt(`index ${root.descriptor.digest}`, parseObject(`index ${root.descriptor.digest}`, root.data), "manifests") : [root.descriptor];
  const sboms: AttestationsVerified["sboms"] = [];
  for (const platform of platforms) {
    for (const predicateType of PLATFORM_PREDICATES) sboms.push({ image: platform.digest, predicateType, signer: (await need(platform, predicateType)).signer });
  }
  return { provenanceSigner: provenance.signer, materials, sboms };
}
