import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import { execa } from "execa";
import { digestOf } from "../../src/oci/image.ts";
import { startRegistry } from "../helpers/registry.ts";
import { builtImage } from "../helpers/build.ts";
import { PROJECT_ROOT } from "../helpers/tmp.ts";

// The installer image as a registry sees it: an independent client (skopeo)
// copies the built layout into a real registry (Debian's docker-registry) and
// reads back the same index digest.
const OUT = join(PROJECT_ROOT, "_out", "minimal");
// the minimal image: built when this file runs alone
before(() => builtImage("minimal"), { timeout: 30 * 60_000 });

test("skopeo pushes the installer layout to a real registry and reads back the same index digest", async () => {
  const { installer } = JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as { installer: { tag: string; indexDigest: string } };
  const registry = await startRegistry();
  const ref = `docker://${registry.address}/bronze/installer:${installer.tag}`;
  await execa("skopeo", ["copy", "--all", "--dest-tls-verify=false", `oci:${join(OUT, "installer")}:${installer.tag}`, ref]);
  const raw = (await execa("skopeo", ["inspect", "--raw", "--tls-verify=false", ref], { encoding: "buffer" })).stdout;
  assert.equal(digestOf(Buffer.from(raw)), installer.indexDigest, "the registry serves our index byte for byte");
  const amd64 = JSON.parse((await execa("skopeo", ["inspect", "--tls-verify=false", "--override-arch", "amd64", ref])).stdout) as { Architecture: string; Layers: string[] };
  assert.equal(amd64.Architecture, "amd64");
  assert.equal(amd64.Layers.length, 1);
});
