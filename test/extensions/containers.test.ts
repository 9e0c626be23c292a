import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { loadTreeExtension } from "../../src/extensions/assemble.ts";
import { tempDir } from "../helpers/tmp.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;
const MANIFEST = "version: v1alpha1\nmetadata:\n  name: web\n  version: 1.0.0\n  author: me\n  description: a web server\n  compatibility:\n    bronze:\n      version: \">= 0.1.0\"\n";

/** An extension directory with this build.yaml, read as bronze reads it. */
async function load(buildYaml: string) {
  const dir = join(await tempDir(), "web");
  await mkdir(dir);
  await writeFile(join(dir, "manifest.yaml"), MANIFEST);
  await writeFile(join(dir, "build.yaml"), buildYaml);
  return loadTreeExtension(dir);
}

test("build.yaml's containers: the image inside the extension, its digest, and how it runs (a service's keys that apply to a container)", async () => {
  const ext = await load(`containers:\n  - name: web\n    image: images/web\n    ref: "1.0"\n    digest: ${DIGEST}\n    user: 101\n    args: [--port, 8080]\n    capabilities: [net_bind_service]\n    network: private\n    limits: {memory: 64M, cpu: 50%}\n    tmpfs: [/var/cache/web]\n`);
  assert.deepEqual(ext.containers, [
    {
      name: "web",
      image: "images/web",
      ref: "1.0",
      digest: DIGEST,
      uid: 101,
      gid: 101,
      settings: { capabilities: ["net_bind_service"], syscalls: [], network: "private", limits: { memory: 64 * 1024 * 1024, cpu: { quotaUs: 50_000, periodUs: 100_000 } }, tmpfs: ["/var/cache/web"], args: ["--port", "8080"] },
    },
  ]);
});

test("bad containers name build.yaml, the line and the fix", async () => {
  const bad = async (entry: string, message: RegExp) => assert.rejects(load(`containers:\n  - name: web\n${entry}`), message);
  await bad(`    image: ../elsewhere\n    digest: ${DIGEST}\n`, /build\.yaml:3: image '\.\.\/elsewhere' must be a path inside the extension's directory/);
  await bad(`    image: images/web\n    digest: latest\n`, /build\.yaml:4: .*sha256:<64 hex>/);
  await bad(`    image: images/web\n`, /build\.yaml:2: .*digest/);
  await bad(`    image: images/web\n    digest: ${DIGEST}\n    writable: [/var/x]\n`, /build\.yaml:5: .*'writable'/);
  await bad(`    image: images/web\n    digest: ${DIGEST}\n    tmpfs: [/proc/x]\n`, /build\.yaml:5: tmpfs '\/proc\/x' must be a normalized absolute path outside \/proc, \/dev, \/sys/);
  await bad(`    image: images/web\n    digest: ${DIGEST}\n    capabilities: [CAP_NET_ADMIN]\n`, /build\.yaml:5: .*capability/);
  await bad(`    image: images/web\n    digest: ${DIGEST}\n  - name: web\n    image: images/web\n    digest: ${DIGEST}\n`, /build\.yaml:5: container 'web' is named twice/);
});
