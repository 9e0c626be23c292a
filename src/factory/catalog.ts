/**
 * The extensions a factory offers. Either a directory of extension sources (the tree's extensions/ by
 * default), each built by the factory itself, or a catalog in a registry: an OCI index whose entries are
 * extension images of one repository, annotated with their name, version and description, the index and
 * every image signed (cosign's tag) by a key the factory trusts. A registry on the local network holding
 * the catalog, the release's cache and the factory's repositories is all an air-gapped site needs.
 */
import type { KeyObject } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { BronzeError, InputError } from "../core/errors.ts";
import { enforcePolicy, loadExtension } from "../extensions/image.ts";
import { parseExtensionManifest } from "../extensions/manifest.ts";
import { imageDigest } from "../extensions/signature.ts";
import { descriptorsAt, parseObject } from "../oci/descriptor.ts";
import { canonicalBytes, digestOf, MEDIA_TYPES, type Descriptor } from "../oci/image.ts";
import { openLayout } from "../oci/layout-read.ts";
import { REF_NAME_ANNOTATION } from "../oci/layout.ts";
import { getManifest, putManifest, type RegistryClient } from "../registry/client.ts";
import { pushLayout } from "../registry/copy.ts";
import { cosignSignatureProblem, putCosignSignature } from "../registry/cosign-tag.ts";
import type { Reference } from "../registry/reference.ts";

export interface CatalogEntry {
  name: string;
  version: string;
  description: string;
  /** an extension source directory the factory builds, or a signed image pinned by digest */
  source: { kind: "build"; dir: string } | { kind: "image"; reference: string; digest: string };
  /** a Talos-built image the catalog's publisher admitted (no kernel modules; built with talosExtensions) */
  talos?: boolean;
}

export const CATALOG_ANNOTATIONS = {
  name: "dev.bronze.extension.name",
  version: "dev.bronze.extension.version",
  description: "dev.bronze.extension.description",
  /** "talos": built for Talos, admitted by the publisher (bronze factory catalog publish --admit-talos) */
  origin: "dev.bronze.extension.origin",
} as const;

/** Every extension under `dir` (a directory of extension sources, each with its manifest.yaml), by name. */
export async function loadCatalog(dir: string): Promise<CatalogEntry[]> {
  const names = await readdir(dir).catch(() => {
    throw new InputError(`--catalog ${dir}: cannot read it; give a directory of extension sources (each with a manifest.yaml) or a catalog in a registry (HOST/REPO:TAG)`);
  });
  const entries: CatalogEntry[] = [];
  for (const name of names.sort()) {
    const manifestPath = join(dir, name, "manifest.yaml");
    const text = await readFile(manifestPath, "utf8").catch(() => undefined);
    if (text === undefined) continue;
    const manifest = parseExtensionManifest(manifestPath, text);
    entries.push({ name: manifest.name, version: manifest.version, description: manifest.description, source: { kind: "build", dir: join(dir, name) } });
  }
  if (entries.length === 0) throw new InputError(`--catalog ${dir}: holds no extension (no */manifest.yaml)`);
  return entries;
}

/**
 * The catalog `ref` names in a registry: its index signed by one of `trusted`, and the entries whose own
 * image is (an entry that is not is left out, and `log` says why). Refused whole when the index is not.
 */
export async function loadRegistryCatalog(client: RegistryClient, ref: Reference, trusted: readonly KeyObject[], log: (line: string) => void): Promise<CatalogEntry[]> {
  const where = `catalog ${client.registry}/${ref.repository}:${ref.tag ?? ref.digest ?? ""}`;
  const index = await getManifest(client, ref, ref.digest ?? ref.tag ?? "");
  const problem = await cosignSignatureProblem(client, ref, index.digest, trusted);
  if (problem) throw new BronzeError(`${where} (${index.digest}) is not used: ${problem}; publish it with 'bronze factory catalog publish --sign-key' and give that key's public half to --trusted-keys`);
  const entries: CatalogEntry[] = [];
  for (const d of descriptorsAt(where, parseObject(where, index.data), "manifests")) {
    const a = d.annotations ?? {};
    const [name, version] = [a[CATALOG_ANNOTATIONS.name], a[CATALOG_ANNOTATIONS.version]];
    if (!name || !version) throw new BronzeError(`${where}: entry ${d.digest} has no ${CATALOG_ANNOTATIONS.name} and ${CATALOG_ANNOTATIONS.version} annotations`);
    const unsigned = await cosignSignatureProblem(client, ref, d.digest, trusted);
    if (unsigned) {
      log(`${where}: extension '${name}' ${version} (${d.digest}) is left out: ${unsigned}`);
      continue;
    }
    const reference = `${client.registry}/${ref.repository}@${d.digest}`;
    const talos = a[CATALOG_ANNOTATIONS.origin] === "talos";
    entries.push({ name, version, description: a[CATALOG_ANNOTATIONS.description] ?? "", source: { kind: "image", reference, digest: d.digest }, ...(talos ? { talos } : {}) });
  }
  return entries;
}

/**
 * `bronze factory catalog publish`: pushes each extension image (layouts as `bronze extension build`
 * writes them) into `ref`'s repository, signs each, then the index listing them, tagged and signed.
 * Images built for Talos enter only when named in `admitTalos` and the content policy holds for them
 * (no kernel modules); they are annotated so, and built with the profile's talosExtensions.
 */
export async function publishCatalog(
  client: RegistryClient,
  ref: Reference,
  layouts: readonly string[],
  key: KeyObject,
  options: { admitTalos: readonly string[]; osVersion: string },
): Promise<{ digest: string; entries: { name: string; version: string; digest: string }[] }> {
  if (!ref.tag) throw new InputError(`catalog ${ref.registry}/${ref.repository}: give the tag to publish it under (HOST/REPO:TAG)`);
  const manifests: Descriptor[] = [];
  const entries: { name: string; version: string; digest: string }[] = [];
  const name = `${client.registry}/${ref.repository}`;
  for (const source of layouts) {
    const layout = await openLayout(source);
    const digest = imageDigest(layout);
    const root = layout.index.manifests.find((m) => m.digest === digest) as Descriptor;
    const content = await loadExtension(layout, { talos: true });
    const { manifest } = content;
    const talos = manifest.talos !== undefined;
    if (talos && !options.admitTalos.includes(manifest.name)) {
      throw new InputError(`${source}: extension '${manifest.name}' is built for Talos (${manifest.talos ?? ""}); name it in --admit-talos to offer it (only without kernel modules)`);
    }
    // without a bronze version to satisfy, what the content policy holds a Talos-built image to: no kernel modules
    if (talos) enforcePolicy(content, { osVersion: options.osVersion });
    await pushLayout(client, source, { ...ref, tag: root.annotations?.[REF_NAME_ANNOTATION] ?? `${manifest.name}-${manifest.version}` }, { chunkSize: 8 * 1024 * 1024 });
    await putCosignSignature(client, ref, digest, key, name);
    manifests.push({
      mediaType: root.mediaType,
      digest,
      size: root.size,
      annotations: {
        [CATALOG_ANNOTATIONS.name]: manifest.name,
        [CATALOG_ANNOTATIONS.version]: manifest.version,
        [CATALOG_ANNOTATIONS.description]: manifest.description,
        ...(talos ? { [CATALOG_ANNOTATIONS.origin]: "talos" } : {}),
      },
    });
    entries.push({ name: manifest.name, version: manifest.version, digest });
  }
  const index = canonicalBytes({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests });
  const digest = digestOf(index);
  // signed before it is tagged: no one reads the tag without its signature there
  await putManifest(client, ref, digest, MEDIA_TYPES.index, index);
  await putCosignSignature(client, ref, digest, key, name);
  await putManifest(client, ref, ref.tag, MEDIA_TYPES.index, index);
  return { digest, entries };
}
