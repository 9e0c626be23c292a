import { FILES } from "../core/outputs.ts";
import { descriptorsAt, parseObject } from "../oci/descriptor.ts";
import { MEDIA_TYPES, type Descriptor } from "../oci/image.ts";
import { layerEntries, readImage, type LayoutReader } from "../oci/layout-read.ts";
import { statementBytes } from "../oci/sigstore.ts";
import type { Claim } from "./statements.ts";
import { CYCLONEDX_PREDICATE, platformsProvenance, PROVENANCE_PREDICATE, SPDX_PREDICATE, type PlatformRecord } from "./provenance.ts";

/** What a verifier expects of each of an installer's platform images: its SBOMs, in both formats. */
export const PLATFORM_PREDICATES = [SPDX_PREDICATE, CYCLONEDX_PREDICATE] as const;

/**
 * The attestations of a bronze installer `root` in `layout`: SLSA provenance for the index (from the build
 * record each platform image carries) and, for each platform image, its SPDX and CycloneDX SBOMs. An image
 * that is no bronze installer (no build record) has none. `name` is the repository the subjects are named by.
 */
export async function installerAttestations(layout: LayoutReader, root: Descriptor, name: string): Promise<Claim[]> {
  const platforms = root.mediaType === MEDIA_TYPES.index ? descriptorsAt(`index ${root.digest}`, parseObject(`index ${root.digest}`, await layout.blob(root)), "manifests") : [root];
  const attestations: Claim[] = [];
  const records: PlatformRecord[] = [];
  for (const platform of platforms) {
    const architecture = platform.platform?.architecture;
    const image = await readImage({ ...layout, index: { manifests: [root] } }, architecture ? { architecture } : {});
    const prefix = `usr/install/${architecture ?? ""}/`;
    const files = (await layerEntries(layout, image)).filter((e) => e.type === "file" && e.path.startsWith(prefix));
    const record = files.find((f) => f.path === `${prefix}${FILES.manifest}`);
    if (!record?.data) continue;
    const where = `${layout.source}: ${record.path}`;
    records.push({ architecture: architecture ?? "", where, value: parseObject(where, record.data) });
    for (const file of files) {
      const predicateType = file.path.endsWith(".spdx.json") ? SPDX_PREDICATE : file.path.endsWith(".cdx.json") ? CYCLONEDX_PREDICATE : undefined;
      if (!predicateType || !file.data) continue;
      const sbom = parseObject(`${layout.source}: ${file.path}`, file.data);
      attestations.push({ subject: platform, predicateType, statement: statementBytes([{ name, digest: platform.digest }], predicateType, sbom) });
    }
  }
  if (!records.length) return attestations;
  // one provenance for the index, over every platform's build record; the index and each platform image are its subjects
  const subjects = [root, ...(platforms[0] === root ? [] : platforms)].map((d) => ({ name, digest: d.digest }));
  return [{ subject: root, predicateType: PROVENANCE_PREDICATE, statement: statementBytes(subjects, PROVENANCE_PREDICATE, platformsProvenance(records)) }, ...attestations];
}
