import { contentDigest, derivedUuid, isoTime, type SbomComponent, type SbomInput } from "./model.ts";

function componentOf(c: SbomComponent): Record<string, unknown> {
  return {
    type: c.kind === "image" || c.kind === "kernel" ? "operating-system" : "library",
    "bom-ref": c.id,
    name: c.name,
    version: c.version,
    description: c.description || undefined,
    licenses: c.license === "NOASSERTION" ? undefined : [{ expression: c.license }],
    purl: c.purl,
    cpe: c.cpe,
    hashes: c.sources.filter((s) => s.sha256).map((s) => ({ alg: "SHA-256", content: s.sha256 })),
    properties: c.sources.map((s) => ({ name: "bronze:source", value: s.location })),
    // CycloneDX's pedigree: each patch as a backport, with the vulnerabilities it resolves
    pedigree: c.patches?.length
      ? {
          patches: c.patches.map((p) => ({ type: "backport", diff: { text: { content: `${p.file} sha256:${p.sha256}` } }, resolves: p.fixes.map((id) => ({ type: "security", id })) })),
          ...(c.patches.some((p) => p.upstream) ? { commits: c.patches.flatMap((p) => (p.upstream ? [{ uid: p.upstream }] : [])) } : {}),
        }
      : undefined,
  };
}

const fileComponent = (f: SbomInput["files"][number]) => ({
  type: "file",
  "bom-ref": `file:${f.path}`,
  name: `/${f.path}`,
  hashes: [
    { alg: "SHA-1", content: f.sha1 },
    { alg: "SHA-256", content: f.sha256 },
  ],
  properties: [{ name: "bronze:installed-by", value: f.owner }, ...(f.linkTarget !== undefined ? [{ name: "bronze:symlink-target", value: f.linkTarget }] : [])],
});

/**
 * A CycloneDX 1.6 JSON BOM: the image as metadata.component, each component
 * with the files it installed nested in it (files the image step wrote itself at the top).
 */
export function cycloneDxDocument(input: SbomInput): string {
  const image = input.components.find((c) => c.kind === "image");
  const parts = input.components.filter((c) => c.kind !== "image");
  const files = [...input.files].sort((a, b) => (a.path < b.path ? -1 : 1));
  const bom = {
    bomFormat: "CycloneDX",
    specVersion: "1.6",
    serialNumber: `urn:uuid:${derivedUuid(contentDigest(input))}`,
    version: 1,
    metadata: {
      timestamp: isoTime(input.image.epoch),
      tools: { components: [{ type: "application", name: "bronze", version: input.image.toolVersion }] },
      component: image ? componentOf(image) : undefined,
    },
    components: [
      ...parts.map((c) => {
        const own = files.filter((f) => f.owner === c.id).map(fileComponent);
        return { ...componentOf(c), ...(own.length ? { components: own } : {}) };
      }),
      ...files.filter((f) => !parts.some((c) => c.id === f.owner)).map(fileComponent),
    ],
    dependencies: image ? [{ ref: image.id, dependsOn: parts.map((c) => c.id) }, ...parts.map((c) => linkedOf(c, parts))] : [],
  };
  return `${JSON.stringify(bom, null, 2)}\n`;
}

/** A component's dependency entry: what is linked into its programs, if anything. */
function linkedOf(c: SbomComponent, parts: readonly SbomComponent[]): { ref: string; dependsOn?: string[] } {
  const linked = parts.filter((p) => p.linkedInto?.includes(c.id)).map((p) => p.id);
  return linked.length ? { ref: c.id, dependsOn: linked } : { ref: c.id };
}
