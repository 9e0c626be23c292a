import { InputError } from "../core/errors.ts";
import { memoryLayout } from "../oci/layout-read.ts";
import type { RegistryClient } from "../registry/client.ts";
import { pullImage } from "../registry/copy.ts";
import { registryTarget, type Reference } from "../registry/reference.ts";
import { advisoryImage, readAdvisories, type Advisory } from "./osv.ts";

/**
 * OSV advisories from a local source (osv.readAdvisories), or from an advisory image in a registry, pulled
 * with every digest checked; `log` names the digest read. A build takes a registry feed pinned by digest only.
 */
export async function loadAdvisories(spec: string, connect: ((ref: Reference) => Promise<RegistryClient>) | undefined, log: (line: string) => void, pinned = false): Promise<Advisory[]> {
  const ref = await registryTarget(spec);
  if (!ref) return readAdvisories(spec);
  if (pinned && !ref.digest) throw new InputError(`advisories ${spec}: a build reads its advisories pinned by digest (HOST/REPO@sha256:…), so that the verdict can be traced to the data`);
  if (!connect) throw new InputError(`advisories ${spec}: a registry reference needs a registry connection here`);
  const image = await pullImage(await connect(ref), ref);
  const named = ref.digest ? spec : `${spec}@${image.root.descriptor.digest}`;
  log(`advisories from ${named}`);
  return advisoryImage(memoryLayout(named, image.root.descriptor, image.blobs));
}
