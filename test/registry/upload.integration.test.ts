import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { execa } from "execa";
import { builtImage } from "../helpers/build.ts";
import { bronze } from "../helpers/cli.ts";
import { startFaultProxy } from "../helpers/fault-proxy.ts";
import { startRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/tmp.ts";

// `bronze push` through a proxy that breaks a share of the requests (5xx, 429, resets, late and lost
// answers); each push is then checked over a direct connection by an independent client: skopeo copies
// the tag with every blob, digests verified. A push that reports success must have left a whole image.
let installer = "";
before(async () => {
  installer = join(await builtImage("minimal"), "installer");
});

async function pushThroughFaults(rate: number, pushes: number, seed: number) {
  const registry = await startRegistry();
  const proxy = await startFaultProxy(registry.address, rate, seed);
  after(proxy.stop);
  const dir = await tempDir();
  const failures: string[] = [];
  for (let i = 0; i < pushes; i++) {
    const repository = `faults-${Math.round(rate * 100)}/push-${i}`;
    // every other push in 1 MiB chunks, so that interrupted chunked uploads are resumed too
    const chunks = i % 2 === 1 ? ["--chunk-size", String(1024 * 1024)] : [];
    const pushed = await bronze(["push", installer, `${proxy.address}/${repository}:test`, "--plain-http", ...chunks]);
    if (pushed.exitCode !== 0) {
      failures.push(`push ${i}: ${String(pushed.all).split("\n").slice(-3).join(" | ")}`);
      continue;
    }
    const copied = await execa("skopeo", ["copy", "--all", "--src-tls-verify=false", `docker://${registry.address}/${repository}:test`, `dir:${join(dir, `copy-${i}`)}`], { reject: false, all: true });
    if (copied.exitCode !== 0) failures.push(`push ${i} reported success, but the registry lacks part of it: ${copied.all}`);
  }
  return { failures, proxy };
}

test("at 12 % faults, 8 of 8 pushes of the installer complete, each whole in the registry", { timeout: 10 * 60_000 }, async (t) => {
  const { failures, proxy } = await pushThroughFaults(0.12, 8, 12);
  t.diagnostic(`faults injected: ${JSON.stringify(proxy.faults)} in ${proxy.requests} requests`);
  assert.deepEqual(failures, []);
  const injected = Object.values(proxy.faults).reduce((a, b) => a + b, 0);
  assert.ok(injected > 0, `faults were injected: ${JSON.stringify(proxy.faults)} in ${proxy.requests} requests`);
});

test("at 30 % faults, 4 of 4 pushes complete, each whole in the registry", { timeout: 10 * 60_000 }, async (t) => {
  const { failures, proxy } = await pushThroughFaults(0.3, 4, 30);
  t.diagnostic(`faults injected: ${JSON.stringify(proxy.faults)} in ${proxy.requests} requests`);
  assert.deepEqual(failures, []);
  assert.ok(proxy.faults["answer lost"] > 0 && proxy.faults.reset > 0, `every kind of fault happened: ${JSON.stringify(proxy.faults)} in ${proxy.requests} requests`);
});
