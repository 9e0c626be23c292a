import { contentDigest, isoTime, type SbomComponent, type SbomInput } from "./model.ts";

const spdxId = (kind: string, name: string) => `SPDXRef-${kind}-${name.replace(/[^A-Za-z0-9.-]/g, "-")}`;

function packageOf(c: SbomComponent, created: string): Record<string, unknown> {
  return {
    SPDXID: spdxId("Package", c.id),
    name: c.name,
    versionInfo: c.version,
    downloadLocation: "NOASSERTION",
    sourceInfo: c.sources.map((s) => `${s.location} (sha256 ${s.sha256})`).join("; ") || undefined,
    filesAnalyzed: false,
    licenseConcluded: c.license,
    licenseDeclared: c.license,
    copyrightText: "NOASSERTION",
    description: c.description || undefined,
    primaryPackagePurpose: c.kind === "image" ? "OPERATING-SYSTEM" : c.kind === "kernel" ? "OPERATING-SYSTEM" : "LIBRARY",
    // SPDX 2.3 has no field for patches: each is an annotation naming the file, its digest and what it fixes
    annotations: c.patches?.length ? c.patches.map((p) => ({ annotationType: "OTHER", annotator: "Tool: bronze", annotationDate: created, comment: `patched: ${p.file} sha256:${p.sha256}; fixes ${p.fixes.join(", ") || "nothing named"}${p.upstream ? `; upstream commit ${p.upstream}` : ""}` })) : undefined,
    externalRefs: [
      ...(c.purl ? [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: c.purl }] : []),
      ...(c.cpe ? [{ referenceCategory: "SECURITY", referenceType: "cpe23Type", referenceLocator: c.cpe }] : []),
    ],
  };
}

/** An SPDX 2.3 JSON document: the image, its components, every file with the component that installed it. */
export function spdxDocument(input: SbomInput): string {
  const digest = contentDigest(input);
  const image = input.components.find((c) => c.kind === "image");
  const files = [...input.files].sort((a, b) => (a.path < b.path ? -1 : 1));
  const doc = {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: `bronze-${input.image.name}-${input.image.version}`,
    documentNamespace: `https://bronze.invalid/spdx/${input.image.name}/${digest}`,
    creationInfo: { created: isoTime(input.image.epoch), creators: [`Tool: bronze-${input.image.toolVersion}`] },
    packages: input.components.map((c) => packageOf(c, isoTime(input.image.epoch))),
    files: files.map((f) => ({
      SPDXID: spdxId("File", f.path),
      fileName: `./${f.path}`,
      checksums: [
        { algorithm: "SHA1", checksumValue: f.sha1 },
        { algorithm: "SHA256", checksumValue: f.sha256 },
      ],
      licenseConcluded: "NOASSERTION",
      copyrightText: "NOASSERTION",
      ...(f.linkTarget !== undefined ? { comment: `symbolic link to ${f.linkTarget}; checksums are of the link target text` } : {}),
    })),
    relationships: [
      ...(image ? [{ spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: spdxId("Package", image.id) }] : []),
      ...input.components
        .filter((c) => c.kind !== "image" && image)
        .map((c) => ({ spdxElementId: spdxId("Package", image?.id ?? ""), relationshipType: "CONTAINS", relatedSpdxElement: spdxId("Package", c.id) })),
      ...files.map((f) => ({ spdxElementId: spdxId("Package", f.owner), relationshipType: "CONTAINS", relatedSpdxElement: spdxId("File", f.path) })),
      ...input.components.flatMap((c) => (c.linkedInto ?? []).map((into) => ({ spdxElementId: spdxId("Package", into), relationshipType: "STATIC_LINK", relatedSpdxElement: spdxId("Package", c.id) }))),
    ],
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}
