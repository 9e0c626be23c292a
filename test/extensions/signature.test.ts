import assert from "node:assert/strict";
import { chmod, cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { pemBegin } from "../../src/core/pem.ts";
import { execa } from "execa";
import { bronze } from "../helpers/cli.ts";
import { ecKeyPair, extensionManifest } from "../helpers/extension.ts";
import { tempDir } from "../helpers/tmp.ts";

// cosign-style key signatures of extension images, checked by our verify and, independently,
// by openssl (the ECDSA signature over the payload) and skopeo (the signature manifest's tag).

const MANIFEST = extensionManifest("hello", ">= 0.1.0");

async function extensionLayout(dir: string, text = "#!/bin/sh\necho hello\n"): Promise<string> {
  const src = join(dir, `src-${text.length}`);
  await mkdir(join(src, "rootfs/usr/local/bin"), { recursive: true });
  await writeFile(join(src, "manifest.yaml"), MANIFEST);
  await writeFile(join(src, "rootfs/usr/local/bin/hello"), text);
  await chmod(join(src, "rootfs/usr/local/bin/hello"), 0o755);
  const out = join(dir, `out-${text.length}`);
  const built = await bronze(["extension", "build", src, "--out", out]);
  assert.equal(built.exitCode, 0, String(built.all));
  return join(out, "hello");
}

const ecKey = ecKeyPair;

interface Index {
  manifests: { digest: string; annotations?: Record<string, string> }[];
}
const blobPath = (layout: string, digest: string) => join(layout, "blobs", ...digest.split(":"));
const readJson = async <T>(path: string) => JSON.parse(await readFile(path, "utf8")) as T;

test("a signed extension verifies with the trusted key; openssl verifies the signature and skopeo reads the signature tag", async () => {
  const dir = await tempDir();
  const layout = await extensionLayout(dir);
  const release = await ecKey(dir, "release");
  const imageDigest = (await readJson<Index>(join(layout, "index.json"))).manifests[0]?.digest as string;

  const signed = await bronze(["extension", "sign", layout, "--key", release.key, "--reference", "localhost/extensions/hello"]);
  assert.equal(signed.exitCode, 0, String(signed.all));
  const tag = `${imageDigest.replace(":", "-")}.sig`;
  assert.match(String(signed.stdout), new RegExp(`signed ${imageDigest}; .* tag ${tag}`));

  const index = await readJson<Index>(join(layout, "index.json"));
  assert.equal(index.manifests[0]?.digest, imageDigest, "the image itself is unchanged");
  const sigEntry = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === tag);
  assert.ok(sigEntry, "the signature manifest is tagged sha256-<hex>.sig");
  const sigManifest = await readJson<{ layers: { mediaType: string; digest: string; annotations: Record<string, string> }[] }>(blobPath(layout, sigEntry.digest));
  const layer = sigManifest.layers[0];
  assert.equal(layer?.mediaType, "application/vnd.dev.cosign.simplesigning.v1+json");
  const payload = await readFile(blobPath(layout, layer.digest));
  assert.deepEqual(JSON.parse(payload.toString()), {
    critical: { identity: { "docker-reference": "localhost/extensions/hello" }, image: { "docker-manifest-digest": imageDigest }, type: "cosign container image signature" },
    optional: null,
  });
  // independent checks: openssl verifies the ECDSA signature over the payload; skopeo reads the tag
  await writeFile(join(dir, "payload"), payload);
  await writeFile(join(dir, "sig.der"), Buffer.from(layer.annotations["dev.cosignproject.cosign/signature"] ?? "", "base64"));
  const openssl = await execa("openssl", ["dgst", "-sha256", "-verify", release.pub, "-signature", join(dir, "sig.der"), join(dir, "payload")], { reject: false });
  assert.equal(openssl.stdout.trim(), "Verified OK", openssl.stderr);
  const skopeo = await execa("skopeo", ["inspect", "--raw", `oci:${layout}:${tag}`]);
  assert.equal(JSON.parse(skopeo.stdout).layers[0].digest, layer.digest);

  const verified = await bronze(["extension", "verify", layout, "--key", release.pub]);
  assert.equal(verified.exitCode, 0, String(verified.all));
  assert.match(String(verified.stdout), /extension 'hello' sha256:[0-9a-f]{64}: signature verified with .*release\.pub/);
  // the image still reads as the one extension
  const inspect = await bronze(["extension", "inspect", layout]);
  assert.equal(inspect.exitCode, 0, String(inspect.all));
});

test("an unsigned, a foreign-signed, a tampered and a re-targeted extension each fail verification, naming the extension and why", async () => {
  const dir = await tempDir();
  const release = await ecKey(dir, "release");
  const other = await ecKey(dir, "other");
  const layout = await extensionLayout(dir);

  const unsigned = await bronze(["extension", "verify", layout, "--key", release.pub]);
  assert.equal(unsigned.exitCode, 1);
  assert.match(String(unsigned.stderr), /extension 'hello' \(sha256:[0-9a-f]{64}\) is not signed: .* has no sha256-[0-9a-f]{64}\.sig/);

  assert.equal((await bronze(["extension", "sign", layout, "--key", other.key])).exitCode, 0);
  const foreign = await bronze(["extension", "verify", layout, "--key", release.pub]);
  assert.equal(foreign.exitCode, 1);
  assert.match(String(foreign.stderr), /extension 'hello' \(sha256:[0-9a-f]{64}\): signature check failed: a signature does not verify with any trusted key/);

  // a second signature, by the trusted key, joins the first; either key now verifies
  assert.equal((await bronze(["extension", "sign", layout, "--key", release.key])).exitCode, 0);
  for (const pub of [release.pub, other.pub]) assert.equal((await bronze(["extension", "verify", layout, "--key", pub])).exitCode, 0);

  // altering the signature payload is caught by its digest
  const tampered = join(dir, "tampered");
  await cp(layout, tampered, { recursive: true });
  const index = await readJson<Index>(join(tampered, "index.json"));
  const sig = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"]?.endsWith(".sig"));
  const sigManifest = await readJson<{ layers: { digest: string }[] }>(blobPath(tampered, sig?.digest ?? ""));
  const payloadPath = blobPath(tampered, sigManifest.layers[0]?.digest ?? "");
  await writeFile(payloadPath, (await readFile(payloadPath, "utf8")).replace("cosign container image signature", "cosign container image signaturf"));
  const altered = await bronze(["extension", "verify", tampered, "--key", release.pub]);
  assert.notEqual(altered.exitCode, 0);
  assert.match(String(altered.stderr), /does not match its digest or size: corrupted or tampered/);

  // a changed extension has another digest: the old signature does not cover it
  const changed = await extensionLayout(dir, "#!/bin/sh\necho changed\n");
  const changedIndex = await readJson<Index>(join(changed, "index.json"));
  await cp(join(layout, "blobs"), join(changed, "blobs"), { recursive: true });
  await writeFile(join(changed, "index.json"), JSON.stringify({ ...changedIndex, manifests: [...changedIndex.manifests, { ...sig, annotations: { "org.opencontainers.image.ref.name": `${changedIndex.manifests[0]?.digest.replace(":", "-")}.sig` } }] }));
  const retargeted = await bronze(["extension", "verify", changed, "--key", release.pub]);
  assert.equal(retargeted.exitCode, 1);
  assert.match(String(retargeted.stderr), /a signature is for sha256:[0-9a-f]{64}, not for this image sha256:[0-9a-f]{64}/);
});

test("signing works on a layout tar too; wrong kinds of keys are refused with the fix, exit 2", async () => {
  const dir = await tempDir();
  const release = await ecKey(dir, "release");
  const layout = await extensionLayout(dir);
  const tar = `${layout}.oci.tar`;
  assert.equal((await bronze(["extension", "sign", tar, "--key", release.key])).exitCode, 0);
  const verified = await bronze(["extension", "verify", tar, "--key", release.pub]);
  assert.equal(verified.exitCode, 0, String(verified.all));
  await execa("tar", ["-tf", tar]);

  const rsa = join(dir, "rsa.key");
  await execa("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa]);
  const refusedRsa = await bronze(["extension", "sign", layout, "--key", rsa]);
  assert.equal(refusedRsa.exitCode, 2);
  assert.match(String(refusedRsa.stderr), /rsa\.key: is a rsa key; bronze's signatures are ECDSA P-256/);
  const encrypted = join(dir, "cosign.key");
  await writeFile(encrypted, `${pemBegin("ENCRYPTED SIGSTORE PRIVATE KEY")}\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`);
  const refusedEncrypted = await bronze(["extension", "sign", layout, "--key", encrypted]);
  assert.equal(refusedEncrypted.exitCode, 2);
  assert.match(String(refusedEncrypted.stderr), /password-encrypted cosign key.*openssl genpkey -algorithm EC/);
  const notAKey = await bronze(["extension", "verify", layout, "--key", join(dir, "payload-missing.pub")]);
  assert.equal(notAKey.exitCode, 2);
});
