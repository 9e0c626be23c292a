import { access, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ExtensionRef } from "../profile/profile.ts";
import { layoutFiles, writeLayoutDir } from "../oci/layout.ts";
import { hasManifest, type RegistryClient } from "../registry/client.ts";
import { pullImage } from "../registry/copy.ts";
import { parseReference, type Reference } from "../registry/reference.ts";
import { pulledExtensionDir } from "./pulled.ts";
import { signatureTag } from "../oci/cosign.ts";

/**
 * An extension of a registry, pulled once by its digest with its cosign signature (the tag
 * sha256-<hex>.sig beside it, when the registry has one) into an OCI layout in the cache.
 */
export async function pullExtension(ref: Extract<ExtensionRef, { kind: "registry" }>, connect: (ref: Reference) => Promise<RegistryClient>, cacheDir: string): Promise<string> {
  const dir = pulledExtensionDir(cacheDir, ref.digest);
  if (await access(join(dir, "index.json")).then(() => true, () => false)) return dir;
  const reference = parseReference(ref.reference);
  const client = await connect(reference);
  const image = await pullImage(client, reference);
  const tag = signatureTag(ref.digest);
  const signatureRef = { registry: reference.registry, repository: reference.repository, tag };
  const signature = (await hasManifest(client, signatureRef, tag)) ? await pullImage(client, signatureRef) : undefined;
  const files = layoutFiles(image.root, [...image.blobs, ...(signature?.blobs ?? [])], ref.digest.slice(7, 19), signature ? [{ root: signature.root, refName: tag }] : []);
  await mkdir(dirname(dir), { recursive: true });
  await writeLayoutDir(dir, files);
  return dir;
}
