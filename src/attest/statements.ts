/**
 * Signed statements about images (the image signature, provenance, SBOMs) kept as Sigstore bundles that
 * refer to their subject, wherever referrers are kept: a registry, or an OCI layout. The store says where.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { BronzeError } from "../core/errors.ts";
import { descriptorsAt, parseObject } from "../oci/descriptor.ts";
import { digestOf, makeBlob, MEDIA_TYPES, type Blob, type Descriptor } from "../oci/image.ts";
import { referrerArtifact, type Referrer } from "../oci/referrers.ts";
import { BUNDLE_MEDIA_TYPE, checkBundle, IMAGE_SIGNATURE_PREDICATE, keyHint, signStatement, statementBytes, type Statement } from "../oci/sigstore.ts";
import { PLATFORM_PREDICATES } from "./installer.ts";
import { materialsIn, PROVENANCE_PREDICATE, type Material } from "./provenance.ts";

/** Where the referrers of images are kept and read. */
export interface ReferrerStore {
  /** the repository or layout, in messages */
  name: string;
  /** what statements name the images by: the repository, or for a layout the image's own name */
  subjectName: string;
  referrers: (subject: string) => Promise<Descriptor[]>;
  /** a manifest or blob, checked against its digest */
  fetch: (descriptor: Descriptor) => Promise<Buffer>;
  /** stores a referrer of `subject` and confirms it is listed */
  attach: (subject: Descriptor, referrer: Referrer) => Promise<void>;
}

export interface TrustedKey {
  /** where it came from, for messages (a file's path) */
  name: string;
  key: KeyObject;
}

/** A statement to sign about `subject`, of `predicateType`. */
export interface Claim {
  subject: Descriptor;
  predicateType: string;
  statement: Buffer;
}

/** The public keys at these paths, named by them. */
export async function trustedKeys(paths: readonly string[]): Promise<TrustedKey[]> {
  const { loadTrustedKey } = await import("../oci/cosign.ts");
  return Promise.all(paths.map(async (name) => ({ name, key: await loadTrustedKey(name) })));
}

export const keysTried = (trusted: readonly TrustedKey[]) => trusted.map((t) => `${t.name} (${keyHint(t.key).slice(0, 16)})`).join(", ");

/** The claim an image signature makes (cosign 3's): the store's image of that digest. */
export function signatureClaim(store: ReferrerStore, subject: Descriptor): Claim {
  return { subject, predicateType: IMAGE_SIGNATURE_PREDICATE, statement: statementBytes([{ name: store.subjectName, digest: subject.digest }], IMAGE_SIGNATURE_PREDICATE, {}) };
}

/** Signs a claim with `key` and attaches it as cosign 3 does: a Sigstore bundle referring to its subject. */
export async function attachClaim(store: ReferrerStore, claim: Claim, key: KeyObject): Promise<{ bundle: string; referrer: string }> {
  const bundle = makeBlob(BUNDLE_MEDIA_TYPE, signStatement(key, claim.statement));
  const referrer = referrerArtifact(claim.subject, BUNDLE_MEDIA_TYPE, bundle, {
    "dev.sigstore.bundle.content": "dsse-envelope",
    "dev.sigstore.bundle.predicateType": claim.predicateType,
  });
  await store.attach(claim.subject, referrer);
  return { bundle: bundle.descriptor.digest, referrer: referrer.manifest.descriptor.digest };
}

/**
 * Makes sure each claim (the image signature first) is in the store signed by `key`, storing only those
 * that are not (signing again adds nothing; the store confirms what it stores): what a push does before it
 * tags. Returns how many were stored.
 */
export async function ensureSigned(store: ReferrerStore, root: Descriptor, key: KeyObject, attestations: readonly Claim[] = []): Promise<number> {
  const own = [{ name: "the signing key", key: createPublicKey(key) }];
  let stored = 0;
  for (const claim of [signatureClaim(store, root), ...attestations]) {
    const statementDigest = digestOf(claim.statement);
    const { found } = await findStatements(store, claim.subject, own, claim.predicateType);
    if (found.some((f) => f.statementDigest === statementDigest)) continue;
    await attachClaim(store, claim, key);
    stored++;
  }
  return stored;
}

export interface Found {
  signer: TrustedKey;
  statement: Statement;
  statementDigest: string;
}

/** The bundles referring to `subject` with a `predicateType` statement that verify with a trusted key, and what is wrong with the others. */
export async function findStatements(store: ReferrerStore, subject: Descriptor, trusted: readonly TrustedKey[], predicateType: string): Promise<{ found: Found[]; problems: string[]; bundles: number }> {
  const problems: string[] = [];
  const found: Found[] = [];
  const bundles = (await store.referrers(subject.digest)).filter(
    (d) => d.artifactType === BUNDLE_MEDIA_TYPE && (d.annotations?.["dev.sigstore.bundle.predicateType"] ?? predicateType) === predicateType,
  );
  for (const referrer of bundles) {
    const where = `${store.name}: referrer ${referrer.digest}`;
    const manifest = parseObject(where, await store.fetch(referrer));
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
    const check = checkBundle(`${store.name}: bundle ${layer.digest}`, await store.fetch(layer), trusted.map((t) => t.key), subject.digest, predicateType);
    if ("keyIndex" in check) found.push({ signer: trusted[check.keyIndex] as TrustedKey, statement: check.statement, statementDigest: check.statementDigest });
    else problems.push(check.problem);
  }
  return { found, problems, bundles: bundles.length };
}

/** The signer of the image `subject`, or an error naming it, why each signature failed, and the keys tried. */
export async function requireSignature(store: ReferrerStore, subject: Descriptor, trusted: readonly TrustedKey[]): Promise<TrustedKey> {
  const search = await findStatements(store, subject, trusted, IMAGE_SIGNATURE_PREDICATE);
  const signer = search.found[0]?.signer;
  if (signer) return signer;
  const why = search.bundles === 0 ? "no signature refers to it (sign it with `bronze sign`, or pass --allow-unsigned where a consumer offers it)" : search.problems.join("; ");
  throw new BronzeError(`${store.name}@${subject.digest}: not verified: ${why}; keys tried: ${keysTried(trusted)}`);
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
export async function verifyAttestations(store: ReferrerStore, root: Blob, trusted: readonly TrustedKey[]): Promise<AttestationsVerified> {
  const name = `${store.name}@${root.descriptor.digest}`;
  const need = async (subject: Descriptor, predicateType: string): Promise<Found> => {
    const search = await findStatements(store, subject, trusted, predicateType);
    const first = search.found[0];
    if (!first) throw new BronzeError(`${name}: no ${predicateType} attestation of ${subject.digest} verifies${search.problems.length ? ` (${search.problems.join("; ")})` : ""}; keys tried: ${keysTried(trusted)}`);
    return first;
  };
  const provenance = await need(root.descriptor, PROVENANCE_PREDICATE);
  const materials = materialsIn(`${name}: provenance`, provenance.statement.predicate);
  const where = `index ${root.descriptor.digest}`;
  const platforms = root.descriptor.mediaType === MEDIA_TYPES.index ? descriptorsAt(where, parseObject(where, root.data), "manifests") : [root.descriptor];
  const sboms: AttestationsVerified["sboms"] = [];
  for (const platform of platforms) {
    for (const predicateType of PLATFORM_PREDICATES) sboms.push({ image: platform.digest, predicateType, signer: (await need(platform, predicateType)).signer });
  }
  return { provenanceSigner: provenance.signer, materials, sboms };
}
