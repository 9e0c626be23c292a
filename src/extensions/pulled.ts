import { join } from "node:path";

/** Where an extension image pulled from a registry is kept, as an OCI layout named by its digest. */
export function pulledExtensionDir(cacheDir: string, digest: string): string {
  return join(cacheDir, "extensions", digest.slice("sha256:".length));
}
