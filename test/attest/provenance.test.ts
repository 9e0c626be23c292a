import assert from "node:assert/strict";
import { test } from "node:test";
import { materialsIn, materialsOf, platformsProvenance, provenancePredicate } from "../../src/attest/provenance.ts";
import { seededRandom } from "../helpers/random.ts";

const hex = (c: string) => c.repeat(64);
const record = {
  profile: "default",
  profileId: hex("1"),
  version: "0.1.0",
  sourceDateEpoch: 1796188140,
  cmdline: "console=ttyS0",
  revision: "a".repeat(40),
  toolchain: { gcc: "gcc (Debian 12.2.0-14) 12.2.0", node: "v24.22.3" },
  kernel: { version: "6.1.192", sourceSha256: hex("2"), key: hex("3") },
  packages: [
    { name: "musl", version: "1.2.3", key: hex("4"), sources: [{ what: "musl_1.2.3.orig.tar.gz", digest: hex("5") }] },
    { name: "init", version: "0.1.0", key: hex("6"), sources: [{ what: "local", digest: hex("7") }] },
  ],
  extensions: [{ name: "hello", version: "1.0", digest: `sha256:${hex("8")}`, layer: { sha256: hex("9") } }],
};

test("the provenance names every input of the build record, and the toolchain, as SLSA v1 lays them out", () => {
  const predicate = provenancePredicate("manifest.json", record) as { buildDefinition: { buildType: string; internalParameters: unknown; externalParameters: { profile: string } } };
  assert.deepEqual(predicate.buildDefinition.internalParameters, { toolchain: record.toolchain });
  assert.equal(predicate.buildDefinition.externalParameters.profile, "default");
  const lines = materialsIn("provenance", predicate).map((m) => `${m.name} ${JSON.stringify(m.digest)}`);
  assert.deepEqual(lines, [
    `bronze source tree (git) {"gitCommit":"${"a".repeat(40)}"}`,
    `kernel 6.1.192 source {"sha256":"${hex("2")}"}`,
    `kernel 6.1.192 input key {"sha256":"${hex("3")}"}`,
    `package musl 1.2.3 input key {"sha256":"${hex("4")}"}`,
    `package musl 1.2.3 source musl_1.2.3.orig.tar.gz {"sha256":"${hex("5")}"}`,
    `package init 0.1.0 input key {"sha256":"${hex("6")}"}`,
    `package init 0.1.0 source local {"sha256":"${hex("7")}"}`,
    `extension hello 1.0 {"sha256":"${hex("8")}"}`,
  ]);
  assert.deepEqual(provenancePredicate("manifest.json", record), predicate, "a pure function of the record");
});

test("an index over two platforms has one provenance: each platform's profile ID, command line, toolchain and materials, named by its architecture", () => {
  const arm = { ...record, profileId: hex("a"), cmdline: "console=ttyAMA0", kernel: { ...record.kernel, key: hex("b") } };
  const predicate = platformsProvenance([
    { architecture: "amd64", where: "amd64/manifest.json", value: record },
    { architecture: "arm64", where: "arm64/manifest.json", value: arm },
  ]) as { buildDefinition: { externalParameters: { profile: string; platforms: unknown }; internalParameters: { toolchains: Record<string, unknown> } } };
  assert.equal(predicate.buildDefinition.externalParameters.profile, "default");
  assert.deepEqual(predicate.buildDefinition.externalParameters.platforms, [
    { architecture: "amd64", profileId: hex("1"), cmdline: "console=ttyS0" },
    { architecture: "arm64", profileId: hex("a"), cmdline: "console=ttyAMA0" },
  ]);
  assert.deepEqual(Object.keys(predicate.buildDefinition.internalParameters.toolchains), ["amd64", "arm64"]);
  const names = materialsIn("provenance", predicate).map((m) => `${m.name} ${m.digest.sha256 ?? m.digest.gitCommit}`);
  assert.equal(names.length, 2 * materialsOf("x", record).length);
  assert.ok(names.includes(`amd64: kernel 6.1.192 input key ${hex("3")}`));
  assert.ok(names.includes(`arm64: kernel 6.1.192 input key ${hex("b")}`));
  assert.deepEqual(platformsProvenance([{ architecture: "amd64", where: "m", value: record }]), provenancePredicate("m", record), "one platform: the single-image provenance");
});

test("a record that is no bronze build record is refused naming the field", () => {
  assert.throws(() => materialsOf("x/manifest.json", { ...record, kernel: {} }), /x\/manifest.json: kernel.sourceSha256 is missing/);
  assert.throws(() => materialsOf("x/manifest.json", { ...record, packages: [{ name: "a" }] }), /packages \(each with key and sources\)/);
});

test("fuzz: 300 mangled provenance predicates are each read or refused with a reason, never an internal error", () => {
  const random = seededRandom(22);
  const values = [null, 1, "x", [], {}, [null], [{ name: 1 }], [{ name: "a", digest: null }], [{ name: "a", digest: { sha256: "b" } }]];
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T;
  for (let i = 0; i < 300; i++) {
    const predicate = random() < 0.2 ? pick(values) : { buildDefinition: random() < 0.2 ? pick(values) : { resolvedDependencies: pick(values) } };
    try {
      const materials = materialsIn(`case ${i}`, predicate);
      assert.ok(materials.every((m) => typeof m.name === "string" && typeof m.digest === "object"));
    } catch (e) {
      assert.equal((e as Error).name, "InputError", String(e));
      assert.match((e as Error).message, new RegExp(`^case ${i}: `));
    }
  }
});
