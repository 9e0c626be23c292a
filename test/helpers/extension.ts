import { join } from "node:path";
import { execa } from "execa";

/** An extension's manifest.yaml (Talos's format) for tests. */
export function extensionManifest(name = "hello", compatibility = ">= 0.1.0, < 1.0.0"): string {
  return `version: v1alpha1
metadata:
  name: ${name}
  version: 1.0.0
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
