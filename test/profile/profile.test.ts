import assert from "node:assert/strict";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { cmdlineForArch, loadProfile, outputDirName, profileForArch } from "../../src/profile/profile.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

const minimalFile = join(PROJECT_ROOT, "profiles", "minimal.yaml");

/** A directory holding a copy of the minimal profile and the given custom profiles. */
async function profiles(files: Record<string, string>): Promise<string> {
  const dir = await tempDir();
  await copyFile(minimalFile, join(dir, "minimal.yaml"));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

test("a custom profile takes its base's image and adds kernel arguments and outputs", async () => {
  const minimal = await loadProfile(minimalFile);
  assert.deepEqual(minimal.outputs, ["uki", "kernel-initramfs", "installer"]);
  assert.deepEqual(minimal.kernelArgs, []);
  assert.match(minimal.id, /^[0-9a-f]{64}$/);
  const dir = await profiles({ "edge.yaml": "name: edge\nbase: minimal\nkernelArgs: [quiet, 'bronze.note=\"two words\"']\noutputs: [uki, installer, disk]\n" });
  const edge = await loadProfile(join(dir, "edge.yaml"));
  assert.equal(edge.base, "minimal");
  assert.deepEqual(edge.files, [join(dir, "edge.yaml"), join(dir, "minimal.yaml")], "the files it was read from");
  assert.deepEqual(edge.packages, minimal.packages);
  assert.equal(edge.kernelProfile, minimal.kernelProfile);
  assert.equal(edge.cmdline, `${minimal.cmdline} quiet bronze.note="two words"`);
  assert.deepEqual(edge.outputs, ["uki", "installer", "disk"]);
  assert.notEqual(edge.id, minimal.id);
});

test("the profile ID is the image definition's: the same wherever the file is, different for any change", async () => {
  const one = await profiles({ "edge.yaml": "name: edge\nbase: minimal\nkernelArgs: [quiet]\n" });
  const two = await profiles({ "edge.yaml": "# the same, commented\nname: edge\ndescription: another text\nbase: minimal\nkernelArgs: [quiet]\n" });
  const three = await profiles({ "edge.yaml": "name: edge\nbase: minimal\nkernelArgs: [loglevel=3]\n" });
  const [a, b, c] = await Promise.all([one, two, three].map((d) => loadProfile(join(d, "edge.yaml"))));
  assert.equal(a!.id, b!.id);
  assert.notEqual(a!.id, c!.id);
  await mkdir(join(one, "nested"));
  await writeFile(join(one, "nested", "edge.yaml"), "name: edge\nbase: ../minimal.yaml\nkernelArgs: [quiet]\n");
  assert.equal((await loadProfile(join(one, "nested", "edge.yaml"))).id, a!.id);
});

test("bad custom profiles name the file, the line and the fix", async () => {
  const dir = await profiles({
    "args.yaml": "name: args\nbase: minimal\nkernelArgs:\n  - quiet\n  - two words\n",
    "outputs.yaml": "name: outputs\nbase: minimal\noutputs: [uki, floppy]\n",
    "iso.yaml": "name: iso\nbase: minimal\noutputs: [uki, iso]\n",
    "disk.yaml": "name: disk\nbase: minimal\noutputs: [uki, disk]\n",
    "override.yaml": "name: override\nbase: minimal\npackages: [musl]\n",
    "nobase.yaml": "name: nobase\nbase: nowhere\n",
    "loop-a.yaml": "name: loop-a\nbase: loop-b\n",
    "loop-b.yaml": "name: loop-b\nbase: loop-a\n",
  });
  const refused = async (file: string, pattern: RegExp) => assert.rejects(loadProfile(join(dir, file)), (e: Error) => (assert.match(e.message, pattern), true));
  await refused("args.yaml", /args\.yaml:5.*'two words' is not one kernel argument/);
  await refused("outputs.yaml", /outputs\.yaml:3.*unknown output 'floppy'; use any of uki, kernel-initramfs, installer, disk, raw\.zst, raw\.xz, qcow2, vhd, gcp, ova, iso, pxe/);
  await refused("iso.yaml", /iso\.yaml:3.*the iso image is made from the installer image: add 'installer'/);
  await refused("disk.yaml", /disk\.yaml:3.*made from the installer image: add 'installer'/);
  await refused("override.yaml", /override\.yaml:3.*'packages' comes from the base profile/);
  await refused("nobase.yaml", /nobase\.yaml:2.*base profile 'nowhere' not found/);
  await refused("loop-a.yaml", /cycle: .*loop-a\.yaml -> .*loop-b\.yaml -> .*loop-a\.yaml/);
});

const DIGEST = `sha256:${"ab".repeat(32)}`;

test("profiles name extensions (this tree's, or images pinned by digest), trusted keys and unsigned exceptions; a custom profile adds to its base's", async () => {
  const dir = await profiles({
    "ext.yaml": `name: ext\nbase: minimal\nextensions:\n  - build: hello\n  - image: motd.oci.tar\n    digest: ${DIGEST}\ntrustedKeys: [keys/ext.pub]\nallowUnsigned: [motd]\n`,
    "more.yaml": `name: more\nbase: ext.yaml\nextensions:\n  - image: ./other\n    digest: sha256:${"cd".repeat(32)}\n  - image: registry.example:5000/acme/ext@${DIGEST}\n`,
  });
  await writeFile(join(dir, "motd.oci.tar"), "");
  await mkdir(join(dir, "other"));
  await mkdir(join(dir, "keys"));
  await writeFile(join(dir, "keys", "ext.pub"), "key");
  const ext = await loadProfile(join(dir, "ext.yaml"));
  assert.deepEqual(ext.extensions, [
    { kind: "build", dir: join(PROJECT_ROOT, "extensions", "hello") },
    { kind: "image", source: join(dir, "motd.oci.tar"), digest: DIGEST },
  ]);
  assert.deepEqual(ext.trustedKeys, [join(dir, "keys", "ext.pub")]);
  assert.deepEqual(ext.allowUnsigned, ["motd"]);
  assert.equal(ext.baseImage, "minimal");
  assert.deepEqual(ext.kernelExtensionModules, ["hello-ext-module"]);
  const more = await loadProfile(join(dir, "more.yaml"));
  assert.deepEqual(more.extensions.map((e) => (e.kind === "build" ? e.dir : e.digest)), [join(PROJECT_ROOT, "extensions", "hello"), DIGEST, `sha256:${"cd".repeat(32)}`, DIGEST]);
  assert.deepEqual(more.extensions[3], { kind: "registry", reference: `registry.example:5000/acme/ext@${DIGEST}`, digest: DIGEST });
  assert.deepEqual(more.trustedKeys, ext.trustedKeys);
  assert.equal(more.baseImage, "minimal", "the root of the base chain");
  // the ID follows what the keys and extensions are, not where they are
  const before = ext.id;
  await writeFile(join(dir, "keys", "ext.pub"), "another key");
  assert.notEqual((await loadProfile(join(dir, "ext.yaml"))).id, before);
});

test("bad extension entries name the file, the line and the fix", async () => {
  const dir = await profiles({
    "unpinned.yaml": "name: unpinned\nbase: minimal\nextensions:\n  - image: x.oci.tar\n",
    "baddigest.yaml": "name: baddigest\nbase: minimal\nextensions:\n  - image: x.oci.tar\n    digest: sha256:1234\n",
    "registry.yaml": `name: registry\nbase: minimal\nextensions:\n  - image: ghcr.io/acme/ext@${DIGEST}\n    digest: sha256:${"cd".repeat(32)}\n`,
    "unpinnedref.yaml": "name: unpinnedref\nbase: minimal\nextensions:\n  - image: ghcr.io/acme/ext:1.0\n    digest: sha256:" + "cd".repeat(32) + "\n",
    "missing.yaml": `name: missing\nbase: minimal\nextensions:\n  - image: nowhere.oci.tar\n    digest: ${DIGEST}\n`,
    "nokey.yaml": "name: nokey\nbase: minimal\ntrustedKeys: [absent.pub]\n",
    "neither.yaml": "name: neither\nbase: minimal\nextensions:\n  - name: x\n",
    "unknown.yaml": "name: unknown\nbase: minimal\nextensions:\n  - build: no-such-extension\n",
  });
  await writeFile(join(dir, "x.oci.tar"), "");
  const refused = async (file: string, pattern: RegExp) => assert.rejects(loadProfile(join(dir, file)), (e: Error) => (assert.match(e.message, pattern), true));
  await refused("unpinned.yaml", /unpinned\.yaml:4.*is not pinned: add digest: sha256:<hex>/);
  await refused("baddigest.yaml", /baddigest\.yaml:5.*sha256: and 64 lowercase hex digits/);
  await refused("registry.yaml", /registry\.yaml:5.*is not the one the reference names/);
  await refused("unpinnedref.yaml", /unpinnedref\.yaml:4.*not found; a registry reference is pinned by digest: HOST\/REPOSITORY@sha256:<hex>/);
  await refused("missing.yaml", /missing\.yaml:4.*extension .*nowhere\.oci\.tar not found/);
  await refused("nokey.yaml", /nokey\.yaml:3.*trusted key .*absent\.pub not found/);
  await refused("neither.yaml", /neither\.yaml:4.*name/);
  await refused("unknown.yaml", /unknown\.yaml:4.*extension .*no-such-extension not found/);
});

test("vulnerabilities: the advisories beside the profile or pinned in a registry, the failing severity; not part of the profile ID", async () => {
  const digest = `sha256:${"ab".repeat(32)}`;
  const dir = await profiles({
    "gated.yaml": "name: gated\nbase: minimal\nvulnerabilities:\n  advisories: osv\n  vex: reviewed.vex.json\n  failOn: critical\n",
    "fed.yaml": `name: fed\nbase: minimal\nvulnerabilities:\n  advisories: 127.0.0.1:5000/security/osv@${digest}\n`,
    "plain.yaml": "name: gated\nbase: minimal\n",
    "bad.yaml": "name: bad\nbase: minimal\nvulnerabilities:\n  advisories: osv\n  failOn: severe\n",
  });
  const gated = await loadProfile(join(dir, "gated.yaml"));
  assert.deepEqual(gated.vulnerabilities, { failOn: "critical", advisories: join(dir, "osv"), vex: join(dir, "reviewed.vex.json") });
  assert.equal((await loadProfile(join(dir, "fed.yaml"))).vulnerabilities?.advisories, `127.0.0.1:5000/security/osv@${digest}`);
  assert.equal((await loadProfile(join(dir, "fed.yaml"))).vulnerabilities?.failOn, "high");
  assert.equal(gated.id, (await loadProfile(join(dir, "plain.yaml"))).id, "the gate's data decides whether the image ships, not what it is");
  await assert.rejects(loadProfile(join(dir, "bad.yaml")), /bad\.yaml:5: .*failOn 'severe' is not a severity; use one of none, low, medium, high, critical/);
});

test("a profile built for another arch: its serial console and the arch's own arguments move, the rest stays, and it is another image", async () => {
  const minimal = await loadProfile(minimalFile);
  assert.match(minimal.cmdline, /console=ttyS0,115200 .*pti=on/);
  const arm = await profileForArch(minimal, "aarch64");
  assert.equal(arm.arch, "aarch64");
  assert.equal(arm.cmdline, minimal.cmdline.replace("console=ttyS0,115200", "console=ttyAMA0,115200").replace(" pti=on", "") + " kpti=on ssbd=kernel");
  assert.notEqual(arm.id, minimal.id);
  assert.equal(arm.name, minimal.name, "one image, two architectures");
  assert.equal(outputDirName(arm), "minimal-arm64");
  assert.equal(outputDirName(minimal), "minimal");
  assert.equal(await profileForArch(minimal, "x86_64"), minimal);
  assert.equal(cmdlineForArch(arm.cmdline, "aarch64", "x86_64").split(" ").sort().join(" "), minimal.cmdline.split(" ").sort().join(" "), "and back");
  assert.equal(cmdlineForArch("console=ttyS0 console=ttyS01 quiet", "x86_64", "aarch64"), "console=ttyAMA0 console=ttyS01 quiet kpti=on ssbd=kernel", "only the serial console itself");
  await assert.rejects(profileForArch(minimal, "riscv64"), /--arch riscv64: not an architecture bronze builds; use one of x86_64, aarch64/);
});
