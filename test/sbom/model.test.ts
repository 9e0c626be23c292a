import assert from "node:assert/strict";
import { test } from "node:test";
import { Spec, Validation } from "@cyclonedx/cyclonedx-library";
import { cycloneDxDocument } from "../../src/sbom/cyclonedx.ts";
import { derivedUuid, fileChecksums, type SbomInput } from "../../src/sbom/model.ts";
import { spdxDocument } from "../../src/sbom/spdx.ts";

const input: SbomInput = {
  image: { name: "test", version: "0.1.0", arch: "x86_64", epoch: 1_700_000_000, toolVersion: "0.1.0" },
  components: [
    { id: "image", name: "bronze-test", version: "0.1.0", license: "NOASSERTION", kind: "image", description: "an image", sources: [] },
    { id: "kernel-linux", name: "linux", version: "6.1.192", license: "GPL-2.0-only", kind: "kernel", description: "", purl: "pkg:deb/debian/linux@6.1.192-2?arch=source", cpe: "cpe:2.3:o:linux:linux_kernel:6.1.192:*:*:*:*:*:*:*", sources: [{ location: "/usr/src/linux-source-6.1.tar.xz", sha256: "a".repeat(64) }] },
    { id: "package-musl", name: "musl", version: "1.2.3", license: "MIT", kind: "package", description: "libc", purl: "pkg:deb/debian/musl@1.2.3-1?arch=source", sources: [{ location: "Debian source package musl 1.2.3-1", sha256: "b".repeat(64) }] },
  ],
  files: [
    { path: "usr/lib/libc.so", owner: "package-musl", ...fileChecksums("libc") },
    { path: "usr/lib/modules/6.1.192/kernel/x.ko", owner: "kernel-linux", ...fileChecksums("ko") },
    { path: "lib", owner: "image", ...fileChecksums("usr/lib"), linkTarget: "usr/lib" },
  ],
};

test("SPDX 2.3: creation time from the epoch, a namespace derived from the content, every file contained by exactly one component", () => {
  const doc = JSON.parse(spdxDocument(input)) as {
    spdxVersion: string;
    dataLicense: string;
    documentNamespace: string;
    creationInfo: { created: string };
    packages: { SPDXID: string; externalRefs: { referenceType: string }[] }[];
    files: { SPDXID: string; checksums: { algorithm: string }[] }[];
    relationships: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[];
  };
  assert.equal(doc.spdxVersion, "SPDX-2.3");
  assert.equal(doc.dataLicense, "CC0-1.0");
  assert.equal(doc.creationInfo.created, "2023-11-14T22:13:20Z");
  assert.match(doc.documentNamespace, /^https:\/\/bronze\.invalid\/spdx\/test\/[0-9a-f]{64}$/);
  assert.equal(spdxDocument(input), spdxDocument(structuredClone(input)), "same input, same bytes");
  assert.notEqual(JSON.parse(spdxDocument({ ...input, files: input.files.slice(1) })).documentNamespace, doc.documentNamespace);
  for (const file of doc.files) {
    assert.deepEqual(file.checksums.map((c) => c.algorithm), ["SHA1", "SHA256"], "SPDX 2.3 requires SHA1 for files");
    assert.equal(doc.relationships.filter((r) => r.relationshipType === "CONTAINS" && r.relatedSpdxElement === file.SPDXID).length, 1, file.SPDXID);
  }
  assert.ok(doc.relationships.some((r) => r.relationshipType === "DESCRIBES" && r.relatedSpdxElement === "SPDXRef-Package-image"));
  assert.deepEqual(doc.packages.find((p) => p.SPDXID === "SPDXRef-Package-kernel-linux")?.externalRefs.map((r) => r.referenceType), ["purl", "cpe23Type"]);
});

test("CycloneDX 1.6: valid by the CycloneDX library's strict schema, serial derived from the content, files nested in their component", async () => {
  const text = cycloneDxDocument(input);
  assert.equal(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(text), null);
  const bom = JSON.parse(text) as { serialNumber: string; metadata: { timestamp: string }; components: { name: string; components?: { name: string }[] }[] };
  assert.match(bom.serialNumber, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(bom.metadata.timestamp, "2023-11-14T22:13:20Z");
  assert.equal(cycloneDxDocument(structuredClone(input)), text);
  assert.deepEqual(bom.components.find((c) => c.name === "musl")?.components?.map((f) => f.name), ["/usr/lib/libc.so"]);
  assert.equal(derivedUuid("x"), derivedUuid("x"));
});
