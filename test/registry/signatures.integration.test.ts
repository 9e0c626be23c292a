import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { cp, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import { execa } from "execa";
import { digestOf } from "../../src/oci/image.ts";
import { BUNDLE_MEDIA_TYPE } from "../../src/oci/sigstore.ts";
import { bronze } from "../helpers/cli.ts";
import { builtImage, startBuild } from "../helpers/build.ts";
import { startRegistry } from "../helpers/registry.ts";
import { independentVerify } from "../helpers/sigstore.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// bronze sign and verify against Debian's docker-registry, which has no referrers API: the signature is
// found through the sha256-<hex> tag, read back with skopeo and checked with sigstore-js
const OUT = join(PROJECT_ROOT, "_out", "minimal");
before(() => builtImage("minimal"), { timeout: 30 * 60_000 });

async function keyPair(dir: string, name: string): Promise<{ key: string; pub: string }> {
  const key = join(dir, `${name}.key`);
  const pub = join(dir, `${name}.pub`);
  await execa("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key]);
  await execa("openssl", ["pkey", "-in", key, "-pubout", "-out", pub]);
  return { key, pub };
}

const inspect = async (ref: string) => JSON.parse((await execa("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`])).stdout) as Record<string, unknown>;

const refusal = (result: { exitCode?: number; all?: unknown }, code: number, pattern: RegExp) => {
  assert.equal(result.exitCode, code, String(result.all));
  assert.match(String(result.all), pattern);
};

test("sign, verify with bronze and sigstore-js; image disk and upgrade take a registry installer only verified; another key, no signature and a tampered layer are refused, naming the digest and the keys", async () => {
  const dir = await tempDir();
  const [signer, stranger] = [await keyPair(dir, "signer"), await keyPair(dir, "stranger")];
  const { tag, indexDigest } = (JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as { installer: { tag: string; indexDigest: string } }).installer;
  const registry = await startRegistry();
  const repo = `${registry.address}/bronze/installer`;
  const ref = `${repo}:${tag}`;
  const fallbackTag = `${repo}:${indexDigest.replace(":", "-")}`;
  assert.equal((await bronze(["push", join(OUT, "installer"), ref, "--plain-http"])).exitCode, 0);

  const signed = await bronze(["sign", ref, "--key", signer.key, "--plain-http"]);
  assert.equal(signed.exitCode, 0, String(signed.all));
  assert.match(String(signed.stdout), new RegExp(`^signed ${repo}@${indexDigest}: bundle sha256:`));

  // what another client finds: the referrers index under the fallback tag, its manifest, the bundle
  const listed = (await inspect(fallbackTag)) as { manifests: { digest: string; artifactType: string }[] };
  assert.equal(listed.manifests.length, 1);
  assert.equal(listed.manifests[0]?.artifactType, BUNDLE_MEDIA_TYPE);
  const referrer = (await inspect(`${repo}@${listed.manifests[0]?.digest ?? ""}`)) as { subject: { digest: string }; layers: { digest: string }[] };
  assert.equal(referrer.subject.digest, indexDigest);
  const bundle = Buffer.from(await (await fetch(`http://${registry.address}/v2/bronze/installer/blobs/${referrer.layers[0]?.digest ?? ""}`)).arrayBuffer());
  independentVerify(bundle, createPublicKey(await readFile(signer.pub)));
  const statement = JSON.parse(Buffer.from((JSON.parse(bundle.toString()) as { dsseEnvelope: { payload: string } }).dsseEnvelope.payload, "base64").toString()) as { subject: { digest: { sha256: string } }[] };
  assert.equal(`sha256:${statement.subject[0]?.digest.sha256 ?? ""}`, indexDigest);

  const verified = await bronze(["verify", ref, "--key", stranger.pub, signer.pub, "--plain-http"]);
  assert.equal(verified.exitCode, 0, String(verified.all));
  assert.match(String(verified.stdout), new RegExp(`^verified ${repo}@${indexDigest}: signed by ${signer.pub}; \\d+ manifests and blobs match`));
  const notTrusted = new RegExp(`${indexDigest}: not verified: .*does not verify with any trusted key.*; keys tried: ${stranger.pub}`);
  refusal(await bronze(["verify", ref, "--key", stranger.pub, "--plain-http"]), 1, notTrusted);

  // consumers: a verified installer from the registry makes the same disk as the local layout
  const disk = join(dir, "disk.raw");
  const fromRegistry = await bronze(["image", "disk", "--from", ref, "--key", signer.pub, "--out", disk, "--plain-http"]);
  assert.equal(fromRegistry.exitCode, 0, String(fromRegistry.all));
  assert.match(String(fromRegistry.stderr), new RegExp(`${ref}@${indexDigest}: signed by ${signer.pub}`));
  assert.equal((await bronze(["image", "disk", "--from", join(OUT, "installer"), "--out", join(dir, "local.raw")])).exitCode, 0);
  assert.ok((await readFile(disk)).equals(await readFile(join(dir, "local.raw"))), "the same disk from the registry and from the layout");
  refusal(await bronze(["upgrade", "--disk", disk, "--image", ref, "--key", stranger.pub, "--plain-http"]), 1, notTrusted);
  refusal(await bronze(["image", "disk", "--from", ref, "--out", join(dir, "x.raw"), "--plain-http"]), 2, /is in a registry: give --key PUBLIC.pem .* or --allow-unsigned/);

  const unsignedRef = `${registry.address}/other/installer:${tag}`;
  assert.equal((await bronze(["push", join(OUT, "installer"), unsignedRef, "--plain-http"])).exitCode, 0);
  const noSignature = new RegExp(`other/installer@${indexDigest}: not verified: no signature refers to it.*keys tried: ${signer.pub}`);
  refusal(await bronze(["verify", unsignedRef, "--key", signer.pub, "--plain-http"]), 1, noSignature);
  refusal(await bronze(["image", "disk", "--from", unsignedRef, "--key", signer.pub, "--out", join(dir, "x.raw"), "--plain-http"]), 1, noSignature);
  refusal(await bronze(["upgrade", "--disk", disk, "--image", unsignedRef, "--key", signer.pub, "--plain-http"]), 1, noSignature);
  const unchecked = await bronze(["image", "disk", "--from", unsignedRef, "--allow-unsigned", "--out", join(dir, "unchecked.raw"), "--plain-http"]);
  assert.equal(unchecked.exitCode, 0, String(unchecked.all));
  assert.match(String(unchecked.stderr), /NOT verified \(--allow-unsigned\)/);

  // a second signature joins the first in the fallback index
  assert.equal((await bronze(["sign", `${repo}@${indexDigest}`, "--key", stranger.key, "--plain-http"])).exitCode, 0);
  assert.equal(((await inspect(fallbackTag)) as { manifests: unknown[] }).manifests.length, 2);
  assert.equal((await bronze(["verify", ref, "--key", stranger.pub, "--plain-http"])).exitCode, 0);

  // a signed push signs before it tags, and once
  const pushedRef = `${registry.address}/signed/installer:${tag}`;
  const pushed = await bronze(["push", join(OUT, "installer"), pushedRef, "--sign-key", signer.key, "--plain-http"]);
  assert.match(String(pushed.stdout), /bytes sent; signature and 3 attestation\(s\): 4 signed and stored$/m, String(pushed.all));
  const again = await bronze(["push", join(OUT, "installer"), pushedRef, "--sign-key", signer.key, "--plain-http"]);
  assert.match(String(again.stdout), /bytes sent; signature and 3 attestation\(s\) already there$/m, String(again.all));
  // the signature and the provenance refer to the index
  assert.equal(((await inspect(`${registry.address}/signed/installer:${indexDigest.replace(":", "-")}`)) as { manifests: unknown[] }).manifests.length, 2);
  const attested = await bronze(["verify", pushedRef, "--key", signer.pub, "--attestations", "--plain-http"]);
  assert.equal(attested.exitCode, 0, String(attested.all));
  const record = JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as {
    revision: string;
    toolchain: Record<string, string>;
    kernel: { version: string; sourceSha256: string; key: string };
    packages: { name: string; version: string; key: string; sources: { what: string; digest: string }[]; patches?: { file: string; sha256: string }[] }[];
    installer: { manifests: { digest: string }[] };
  };
  const printed = String(attested.stdout);
  for (const platform of record.installer.manifests) {
    for (const format of ["https://spdx.dev/Document", "https://cyclonedx.org/bom"]) assert.ok(printed.includes(`sbom ${format} of ${platform.digest}: signed by ${signer.pub}`), `${format} of ${platform.digest}`);
  }
  // the provenance's materials are the build's: its commit, the kernel, every package's key and sources
  const materials = printed.split("\n").filter((l) => l.startsWith("  ")).map((l) => l.trim());
  const expected = [
    `bronze source tree (git) gitCommit:${record.revision}`,
    `kernel ${record.kernel.version} source sha256:${record.kernel.sourceSha256}`,
    `kernel ${record.kernel.version} input key sha256:${record.kernel.key}`,
    ...record.packages.flatMap((p) => [
      `package ${p.name} ${p.version} input key sha256:${p.key}`,
      ...p.sources.map((src) => `package ${p.name} ${p.version} source ${src.what} sha256:${src.digest}`),
      ...(p.patches ?? []).map((x) => `package ${p.name} ${p.version} patch ${x.file} sha256:${x.sha256}`),
    ]),
  ];
  assert.deepEqual(materials.sort(), expected.sort(), "the materials are exactly what the build record names");
  assert.ok(Object.keys(record.toolchain).includes("systemd-stub") && record.toolchain.node === process.version);
  refusal(await bronze(["verify", ref, "--key", signer.pub, "--attestations", "--plain-http"]), 1, new RegExp(`no https://slsa.dev/provenance/v1 attestation of ${indexDigest} verifies`));

  // a layer altered in the registry's storage: the signature still names the digest, the content does not match it
  const index = (await inspect(ref)) as { manifests: { digest: string }[] };
  const image = (await inspect(`${repo}@${index.manifests[0]?.digest ?? ""}`)) as { layers: { digest: string }[] };
  const layer = image.layers[0]?.digest.slice(7) ?? "";
  const file = await open(join(registry.storage, "docker/registry/v2/blobs/sha256", layer.slice(0, 2), layer, "data"), "r+");
  const byte = Buffer.alloc(1);
  await file.read(byte, 0, 1, 1000);
  await file.write(Buffer.from([(byte[0] ?? 0) ^ 0xff]), 0, 1, 1000);
  await file.close();
  const tampered = new RegExp(`${indexDigest}: signed by ${signer.pub}, but its content does not match its digests: .*blob sha256:${layer} arrived with other content`);
  refusal(await bronze(["verify", ref, "--key", signer.pub, "--plain-http"]), 1, tampered);
  refusal(await bronze(["image", "disk", "--from", ref, "--key", signer.pub, "--out", join(dir, "x.raw"), "--plain-http"]), 1, tampered);
  refusal(await bronze(["upgrade", "--disk", disk, "--image", ref, "--key", signer.pub, "--plain-http"]), 1, tampered);
});

test("a layout signed and attested in place (directory and tar): verified by bronze and sigstore-js, taken by image disk only with its key, and carried up by push with every referrer", async () => {
  const dir = await tempDir();
  const [signer, stranger] = [await keyPair(dir, "signer"), await keyPair(dir, "stranger")];
  const { tag, indexDigest } = (JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as { installer: { tag: string; indexDigest: string } }).installer;
  const layout = join(dir, "installer");
  const tar = join(dir, "installer.oci.tar");
  await cp(join(OUT, "installer"), layout, { recursive: true });
  await cp(join(OUT, "installer.oci.tar"), tar);

  const signed = await bronze(["sign", layout, "--key", signer.key, "--attest"]);
  assert.equal(signed.exitCode, 0, String(signed.all));
  assert.match(String(signed.stdout), new RegExp(`^signed ${layout}@${indexDigest}: 4 of 4 statement\\(s\\) added`));
  assert.match(String((await bronze(["sign", layout, "--key", signer.key, "--attest"])).stdout), /: 0 of 4 statement\(s\) added/);
  assert.equal((await bronze(["sign", tar, "--key", signer.key, "--attest"])).exitCode, 0);

  // the image is still the one skopeo finds by its tag; the bundle is one sigstore-js verifies
  const inspected = await execa("skopeo", ["inspect", "--raw", `oci:${layout}:${tag}`]);
  assert.equal(digestOf(Buffer.from(inspected.stdout)), indexDigest);
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { digest: string; artifactType?: string; annotations?: Record<string, string> }[] };
  const signature = index.manifests.find((m) => m.annotations?.["dev.sigstore.bundle.predicateType"] === "https://sigstore.dev/cosign/sign/v1");
  const blob = async (digest: string) => readFile(join(layout, "blobs/sha256", digest.slice(7)));
  const referrer = JSON.parse((await blob(signature?.digest ?? "")).toString()) as { subject: { digest: string }; layers: { digest: string }[] };
  assert.equal(referrer.subject.digest, indexDigest);
  independentVerify(await blob(referrer.layers[0]?.digest ?? ""), createPublicKey(await readFile(signer.pub)));

  for (const target of [layout, tar]) {
    const verified = await bronze(["verify", target, "--key", signer.pub, "--attestations"]);
    assert.equal(verified.exitCode, 0, String(verified.all));
    assert.match(String(verified.stdout), new RegExp(`^verified ${target}@${indexDigest}: signed by ${signer.pub}`));
    assert.match(String(verified.stdout), /provenance \(https:\/\/slsa.dev\/provenance\/v1\): signed by .*; \d+ materials:/);
    refusal(await bronze(["verify", target, "--key", stranger.pub]), 1, new RegExp(`${target}@${indexDigest}: not verified: .*keys tried: ${stranger.pub}`));
  }
  const disk = join(dir, "disk.raw");
  const fromTar = await bronze(["image", "disk", "--from", tar, "--key", signer.pub, "--out", disk]);
  assert.equal(fromTar.exitCode, 0, String(fromTar.all));
  assert.match(String(fromTar.stderr), new RegExp(`${tar}@${indexDigest}: signed by ${signer.pub}`));
  assert.equal((await bronze(["image", "disk", "--from", join(OUT, "installer"), "--out", join(dir, "plain.raw")])).exitCode, 0);
  assert.ok((await readFile(disk)).equals(await readFile(join(dir, "plain.raw"))), "signing the layout changes nothing that boots");
  refusal(await bronze(["image", "disk", "--from", layout, "--key", stranger.pub, "--out", join(dir, "x.raw")]), 1, /not verified/);

  // a plain push carries the layout's referrers up before the tag
  const registry = await startRegistry();
  const ref = `${registry.address}/carried/installer:${tag}`;
  assert.equal((await bronze(["push", layout, ref, "--plain-http"])).exitCode, 0);
  const remote = await bronze(["verify", ref, "--key", signer.pub, "--attestations", "--plain-http"]);
  assert.equal(remote.exitCode, 0, String(remote.all));

  // a layer altered in the layout: the signature verifies, the content does not
  const image = JSON.parse((await execa("skopeo", ["inspect", "--raw", `oci:${layout}:${tag}`, "--override-arch", "amd64"])).stdout) as { manifests: { digest: string }[] };
  const manifest = JSON.parse((await blob(image.manifests[0]?.digest ?? "")).toString()) as { layers: { digest: string }[] };
  const layerFile = join(layout, "blobs/sha256", manifest.layers[0]?.digest.slice(7) ?? "");
  const bytes = await readFile(layerFile);
  bytes[1000] = (bytes[1000] ?? 0) ^ 0xff;
  await writeFile(layerFile, bytes);
  refusal(await bronze(["verify", layout, "--key", signer.pub]), 1, new RegExp(`${layout}@${indexDigest}: signed by ${signer.pub}, but its content does not match its digests`));
});

test("bronze build --sign-key signs and attests the installer it publishes (layout and tar), and a build without it publishes it unsigned again", async () => {
  const dir = await tempDir();
  const signer = await keyPair(dir, "signer");
  const profile = join(dir, "signed-build.yaml");
  await writeFile(profile, "name: signed-build\nbase: minimal\noutputs: [uki, installer]\n");
  const built = await startBuild(profile, undefined, ["--sign-key", signer.key]);
  assert.equal(built.exitCode, 0, built.all);
  const out = join(PROJECT_ROOT, "_out", "signed-build");
  const { indexDigest } = (JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as { installer: { indexDigest: string } }).installer;
  for (const name of ["installer", "installer.oci.tar"]) {
    assert.match(built.all, new RegExp(`^${name.replaceAll(".", "\\.")}@${indexDigest}: signed and attested \\(4 of 4 statements added\\)$`, "m"));
    const verified = await bronze(["verify", join(out, name), "--key", signer.pub, "--attestations"]);
    assert.equal(verified.exitCode, 0, String(verified.all));
  }
  const plain = await startBuild(profile);
  assert.equal(plain.exitCode, 0, plain.all);
  refusal(await bronze(["verify", join(out, "installer"), "--key", signer.pub]), 1, /no signature refers to it/);
});
