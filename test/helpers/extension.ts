import assert from "node:assert/strict";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { imageDigest } from "../../src/extensions/signature.ts";
import { openLayout } from "../../src/oci/layout-read.ts";
import { bronze } from "./cli.ts";

/** An extension's manifest.yaml (Talos's format) for tests. */
export function extensionManifest(name = "hello", compatibility = ">= 0.1.0, < 1.0.0", version = "1.0.0"): string {
  return `version: v1alpha1
metadata:
  name: ${name}
  version: ${version}
  author: bronze tests
  description: a test extension
  compatibility:
    bronze:
      version: "${compatibility}"
`;
}

/** An ECDSA P-256 key pair made by openssl, as cosign's: the private key and its public half (PEM). */
export async function ecKeyPair(dir: string, name: string): Promise<{ key: string; pub: string }> {
  const key = join(dir, `${name}.key`);
  const pub = join(dir, `${name}.pub`);
  await execa("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key]);
  await execa("openssl", ["pkey", "-in", key, "-pubout", "-out", pub]);
  return { key, pub };
}

/** An extension image of `files` (path: text) made by `bronze extension build` into `out`: its tar, layout and digest. */
export async function extensionImage(name: string, files: Record<string, string>, out: string, version = "1.0.0"): Promise<{ tar: string; layout: string; digest: string }> {
  const src = join(out, `${name}-src`);
  await mkdir(src, { recursive: true });
  await writeFile(join(src, "manifest.yaml"), extensionManifest(name, undefined, version));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(src, "rootfs", path, ".."), { recursive: true });
    await writeFile(join(src, "rootfs", path), text);
    await chmod(join(src, "rootfs", path), 0o644);
  }
  const result = await bronze(["extension", "build", src, "--out", out]);
  assert.equal(result.exitCode, 0, String(result.all));
  const tar = join(out, `${name}.oci.tar`);
  return { tar, layout: join(out, name), digest: imageDigest(await openLayout(tar)) };
}
