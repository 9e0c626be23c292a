/**
 * Where a factory keeps everything: repositories under the one it is given (--registry HOST/REPO), so
 * that any number of factory processes on that registry serve the same schematics and images and none
 * builds what another already stored. Each is an OCI artifact: an empty config and one layer per file.
 *   REPO/schematics:<ID>          the schematic's canonical bytes (sha256 = ID)
 *   REPO/image/<ID>:<VERSION>     the files a build of it for that release published, by name
 *   REPO/installer/<ID>:<VERSION> its installer image (signed and attested when the factory has a key)
 *   REPO/image/<ID>:<VERSION>-building  which factory builds it now, and since when (a lease, renewed)
 */
import { BronzeError } from "../core/errors.ts";
import { sha256 } from "../core/hash.ts";
import { parseObject } from "../oci/descriptor.ts";
import { makeBlob, manifestBlob, type Blob } from "../oci/image.ts";
import { EMPTY_MEDIA_TYPE } from "../oci/referrers.ts";
import { findManifest, getBlob, hasManifest, MANIFEST_ACCEPT, putManifest, scopeOf, type RegistryClient } from "../registry/client.ts";
import type { HttpResponse } from "../registry/transport.ts";
import type { Reference } from "../registry/reference.ts";
import { pushBlob } from "../registry/upload.ts";

export const FACTORY_MEDIA_TYPES = {
  schematic: "application/vnd.bronze.factory.schematic.v1+json",
  assets: "application/vnd.bronze.factory.assets.v1",
  claim: "application/vnd.bronze.factory.build-claim.v1+json",
  file: "application/octet-stream",
} as const;
const TITLE = "org.opencontainers.image.title";
const CHUNK = 8 * 1024 * 1024;

/** A factory's claim to build an image: which process, and when it last said so (ms since the epoch). */
export interface BuildClaim {
  owner: string;
  at: number;
}

const claimTag = (version: string) => `${version}-building`;

/** A stored file of an image: its name and the blob holding it. */
export interface AssetFile {
  name: string;
  digest: string;
  size: number;
}

export class FactoryStore {
  readonly client: RegistryClient;
  private readonly base: Reference;

  constructor(client: RegistryClient, base: Reference) {
    this.client = client;
    this.base = base;
  }

  /** The repository of the installer image of `id`. */
  installer(id: string): Reference {
    return this.repository("installer", id);
  }

  private repository(...path: string[]): Reference {
    return { registry: this.base.registry, repository: [this.base.repository, ...path].join("/") };
  }

  private async putArtifact(ref: Reference, tag: string, artifactType: string, layers: readonly Blob[]): Promise<void> {
    const config = makeBlob(EMPTY_MEDIA_TYPE, Buffer.from("{}"));
    for (const blob of [config, ...layers]) await pushBlob(this.client, ref, blob.descriptor.digest, () => Promise.resolve(blob.data), { chunkSize: CHUNK });
    const manifest = manifestBlob(config.descriptor, layers.map((l) => l.descriptor), { artifactType });
    await putManifest(this.client, ref, tag, manifest.descriptor.mediaType, manifest.data);
  }

  /** The layers of the artifact tagged `tag`, undefined when there is none; one of another type is refused. */
  private async layersOf(ref: Reference, tag: string, artifactType: string): Promise<AssetFile[] | undefined> {
    // one request: this is asked at every request for an image
    const found = await findManifest(this.client, ref, tag);
    if (!found) return undefined;
    const where = `${ref.registry}/${ref.repository}:${tag}`;
    const manifest = parseObject(where, found.data);
    if (manifest.artifactType !== artifactType) throw new BronzeError(`${where}: artifact type ${String(manifest.artifactType)} is not ${artifactType}; that tag is not the factory's`);
    const layers = Array.isArray(manifest.layers) ? (manifest.layers as Record<string, unknown>[]) : [];
    return layers.map((layer) => {
      const name = (layer.annotations as Record<string, unknown> | undefined)?.[TITLE];
      if (typeof layer.digest !== "string" || typeof layer.size !== "number" || typeof name !== "string") throw new BronzeError(`${where}: a layer has no digest, size or title`);
      return { name, digest: layer.digest, size: layer.size };
    });
  }

  async putSchematic(id: string, bytes: Buffer): Promise<void> {
    const ref = this.repository("schematics");
    if (await hasManifest(this.client, ref, id)) return;
    await this.putArtifact(ref, id, FACTORY_MEDIA_TYPES.schematic, [makeBlob(FACTORY_MEDIA_TYPES.schematic, bytes, { annotations: { [TITLE]: "schematic.json" } })]);
  }

  /** The stored schematic's bytes, checked against its ID; undefined when none has that ID. */
  async schematic(id: string): Promise<Buffer | undefined> {
    const ref = this.repository("schematics");
    const [layer] = (await this.layersOf(ref, id, FACTORY_MEDIA_TYPES.schematic)) ?? [];
    if (!layer) return undefined;
    const bytes = await getBlob(this.client, ref, layer.digest, layer.size);
    if (sha256(bytes) !== id) throw new BronzeError(`${ref.registry}/${ref.repository}:${id}: the stored schematic does not hash to its ID`);
    return bytes;
  }

  async putImage(id: string, version: string, files: readonly { name: string; data: Buffer }[]): Promise<void> {
    const layers = files.map((f) => makeBlob(FACTORY_MEDIA_TYPES.file, f.data, { annotations: { [TITLE]: f.name } }));
    await this.putArtifact(this.repository("image", id), version, FACTORY_MEDIA_TYPES.assets, layers);
  }

  async putBuildClaim(id: string, version: string, claim: BuildClaim): Promise<void> {
    const data = Buffer.from(JSON.stringify(claim));
    await this.putArtifact(this.repository("image", id), claimTag(version), FACTORY_MEDIA_TYPES.claim, [makeBlob(FACTORY_MEDIA_TYPES.claim, data, { annotations: { [TITLE]: "claim.json" } })]);
  }

  /** Who claims to be building the image of `id` at `version`, if anyone ever did. */
  async buildClaim(id: string, version: string): Promise<BuildClaim | undefined> {
    const ref = this.repository("image", id);
    const [layer] = (await this.layersOf(ref, claimTag(version), FACTORY_MEDIA_TYPES.claim)) ?? [];
    if (!layer) return undefined;
    const claim = parseObject(`${ref.repository}:${claimTag(version)}`, await getBlob(this.client, ref, layer.digest, layer.size));
    return typeof claim.owner === "string" && typeof claim.at === "number" ? { owner: claim.owner, at: claim.at } : undefined;
  }

  /** The files stored for the image of `id` at `version`; undefined when it was not built yet. */
  image(id: string, version: string): Promise<AssetFile[] | undefined> {
    return this.layersOf(this.repository("image", id), version, FACTORY_MEDIA_TYPES.assets);
  }

  /** The registry's answer for a manifest (by tag or digest) or the referrers of a digest in the installer repository of `id`. */
  installerObject(id: string, method: "GET" | "HEAD", kind: "manifests" | "referrers", reference: string): Promise<HttpResponse> {
    const ref = this.installer(id);
    return this.client.request(method, `/v2/${ref.repository}/${kind}/${reference}`, scopeOf(ref, "pull"), { Accept: kind === "manifests" ? MANIFEST_ACCEPT : "application/vnd.oci.image.index.v1+json" });
  }

  /** The size of a blob of the installer repository of `id`; undefined when it is not there. */
  async installerBlobSize(id: string, digest: string): Promise<number | undefined> {
    const ref = this.installer(id);
    const head = await this.client.request("HEAD", `/v2/${ref.repository}/blobs/${digest}`, scopeOf(ref, "pull"));
    return head.status === 200 ? Number(head.headers["content-length"]) : undefined;
  }

  /** A blob of the installer repository of `id` of `size` bytes, checked against its digest. */
  installerBlob(id: string, digest: string, size: number): Promise<Buffer> {
    return getBlob(this.client, this.installer(id), digest, size);
  }

  /** A stored file's bytes, checked against their digest. */
  file(id: string, file: AssetFile): Promise<Buffer> {
    return getBlob(this.client, this.repository("image", id), file.digest, file.size);
  }
}
