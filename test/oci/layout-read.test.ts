import assert from "node:assert/strict";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { test } from "node:test";
import { BronzeError } from "../../src/core/errors.ts";
import { buildExtensionImage, loadExtension } from "../../src/extensions/image.ts";
import { signLayout, verifyLayout } from "../../src/extensions/signature.ts";
import { signLayout as signBundled, verifyLayout as verifyBundled } from "../../src/attest/layout.ts";
import { buildImage, buildIndex, digestOf } from "../../src/oci/image.ts";
import { layoutFiles, layoutTar } from "../../src/oci/layout.ts";
import { extensionManifest } from "../helpers/extension.ts";
import { tempDir } from "../helpers/tmp.ts";
import { seededRandom } from "../helpers/random.ts";

// Fuzzing the readers of what comes from outside (an extension's OCI layout, its index, its layer tar,
// its manifest): every mutated input is read back correctly or refused with a BronzeError that names the
// input, never an internal error. Seeded: a failure names its case, and the same seed repeats it.
const EPOCH = 1_700_000_000;
const CASES = 150;
const dir = await tempDir();

type Mutation = (bytes: Buffer, next: () => number) => { bytes: Buffer; what: string };
const int = (next: () => number, below: number) => Math.floor(next() * below);

/** The ways a transfer or a hand breaks bytes: cut short, bits flipped, a run overwritten, a block zeroed. */
const MUTATIONS: Mutation[] = [
  (b, next) => {
    const at = int(next, b.length);
    return { bytes: b.subarray(0, at), what: `truncated at ${at}` };
  },
  (b, next) => {
    const out = Buffer.from(b);
    const flips = 1 + int(next, 8);
    for (let i = 0; i < flips; i++) out[int(next, out.length)]! ^= 1 << int(next, 8);
    return { bytes: out, what: `${flips} bit(s) flipped` };
  },
  (b, next) => {
    const out = Buffer.from(b);
    const at = int(next, out.length);
    const length = 1 + int(next, 64);
    for (let i = at; i < Math.min(out.length, at + length); i++) out[i] = int(next, 256);
    return { bytes: out, what: `${length} byte(s) overwritten at ${at}` };
  },
  (b, next) => {
    const out = Buffer.from(b);
    const block = int(next, Math.ceil(out.length / 512));
    out.fill(0, block * 512, block * 512 + 512);
    return { bytes: out, what: `block ${block} zeroed` };
  },
];

/** JSON that parses but is not what the reader expects: a field of another type, missing or null. */
function confusedJson(text: string, next: () => number): { bytes: Buffer; what: string } {
  const value = JSON.parse(text) as Record<string, unknown>;
  const paths: (string | number)[][] = [];
  const walk = (v: unknown, path: (string | number)[]) => {
    paths.push(path);
    if (v && typeof v === "object") for (const [k, child] of Object.entries(v)) walk(child, [...path, Array.isArray(v) ? Number(k) : k]);
  };
  walk(value, []);
  const path = paths[1 + int(next, paths.length - 1)]!;
  const replacements: unknown[] = [null, 7, "x", [], {}, true];
  const replacement = replacements[int(next, replacements.length)];
  let parent: Record<string | number, unknown> = value;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  parent[path.at(-1)!] = replacement;
  return { bytes: Buffer.from(JSON.stringify(value)), what: `${path.join(".")} = ${JSON.stringify(replacement)}` };
}

async function extension() {
  const source = join(dir, "source");
  await mkdir(join(source, "rootfs/usr/local/bin"), { recursive: true });
  await writeFile(join(source, "manifest.yaml"), extensionManifest());
  await writeFile(join(source, "rootfs/usr/local/bin/hello"), "#!/bin/sh\necho hello\n");
  await chmod(join(source, "rootfs/usr/local/bin/hello"), 0o755);
  return buildExtensionImage(source, { epoch: EPOCH, osVersion: "0.1.0" });
}

const base = await extension();
/** the uncompressed layer tar of the base image, as its layout holds it */
const baseLayer = (() => {
  const blob = (digest: string) => base.files.find((f) => f.path === `blobs/${digest.replace(":", "/")}`)!.data;
  const manifestDigest = (JSON.parse(base.index.data.toString()) as { manifests: { digest: string }[] }).manifests[0]!.digest;
  const manifest = JSON.parse(blob(manifestDigest).toString()) as { layers: { digest: string }[] };
  return gunzipSync(blob(manifest.layers[0]!.digest));
})();

type Reader = (file: string) => Promise<void>;

/** the extension read back: it must be the one that was written */
const readExtension: Reader = async (file) => {
  assert.equal((await loadExtension(file)).manifest.name, "hello", `${file} read as another extension`);
};

/** Reads one mutated layout tar: a correct result or a clean refusal naming the file. */
async function readsCleanly(read: Reader, bytes: Buffer, name: string, what: string): Promise<"read" | "refused"> {
  const file = join(dir, `${name}.oci.tar`);
  await writeFile(file, bytes);
  try {
    await read(file);
    return "read";
  } catch (error) {
    if (!(error instanceof BronzeError)) assert.fail(`${name} (${what}): an internal error instead of a refusal: ${(error as Error).stack ?? String(error)}`);
    assert.ok(error.message.includes(file) || error.message.includes("extension 'hello'"), `${name} (${what}): the refusal does not name the input: ${error.message}`);
    return "refused";
  }
}

async function fuzz(name: string, seed: number, mutate: (next: () => number) => { bytes: Buffer; what: string }, read = readExtension): Promise<Record<string, number>> {
  const next = seededRandom(seed);
  const seen: Record<string, number> = { read: 0, refused: 0 };
  for (let i = 0; i < CASES; i++) {
    const { bytes, what } = mutate(next);
    const verdict = await readsCleanly(read, bytes, `${name}-${seed}-${i}`, what);
    seen[verdict] = (seen[verdict] ?? 0) + 1;
  }
  return seen;
}

/** A layout built with correct digests around changed content: what a publisher (or its key's thief) can ship. */
function layoutAround(change: { layerTar?: Buffer; index?: (index: Buffer) => Buffer }): Buffer {
  const image = buildImage({ platform: { architecture: "amd64", os: "linux" }, layerTar: change.layerTar ?? baseLayer, created: "2023-11-14T22:13:20Z", annotations: {} });
  const files = layoutFiles(buildIndex([image], {}), [image.manifest, ...image.blobs], "1.0.0");
  const { index } = change;
  return layoutTar(index ? files.map((f) => (f.path === "index.json" ? { ...f, data: index(f.data) } : f)) : files, EPOCH);
}

test("a layout tar damaged anywhere (cut short, bits flipped, bytes overwritten, a block zeroed) is read correctly or refused cleanly", async (t) => {
  const seen = await fuzz("outer", 1, (next) => MUTATIONS[int(next, MUTATIONS.length)]!(base.tar, next));
  t.diagnostic(JSON.stringify(seen));
  assert.ok(seen.refused! > CASES / 2, `most damage is noticed: ${JSON.stringify(seen)}`);
});

test("an index.json that is broken or of the wrong shape is refused cleanly, naming the file", async (t) => {
  const seen = await fuzz("index", 2, (next) => {
    let what = "";
    const bytes = layoutAround({
      index: (index) => {
        const mutated = next() < 0.5 ? confusedJson(index.toString(), next) : MUTATIONS[int(next, 3)]!(index, next);
        what = mutated.what;
        return mutated.bytes;
      },
    });
    return { bytes, what: `index.json: ${what}` };
  });
  t.diagnostic(JSON.stringify(seen));
  assert.ok(seen.refused! > 0, JSON.stringify(seen));
});

test("a layer tar damaged under correct digests (a signed but broken image) is read correctly or refused cleanly", async (t) => {
  const seen = await fuzz("layer", 3, (next) => {
    const { bytes, what } = MUTATIONS[int(next, MUTATIONS.length)]!(baseLayer, next);
    return { bytes: layoutAround({ layerTar: bytes }), what: `layer: ${what}` };
  });
  t.diagnostic(JSON.stringify(seen));
  assert.ok(seen.refused! > 0, JSON.stringify(seen));
});

test("a signed layout damaged anywhere verifies or is refused cleanly, naming the extension", async (t) => {
  const signed = join(dir, "signed.oci.tar");
  await writeFile(signed, base.tar);
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  await signLayout(signed, privateKey, "example.test/hello:1.0.0", EPOCH);
  const bytes = await readFile(signed);
  const verifies: Reader = async (file) => {
    await verifyLayout(file, [publicKey], "hello");
  };
  const seen = await fuzz("signed", 4, (next) => MUTATIONS[int(next, MUTATIONS.length)]!(bytes, next), verifies);
  t.diagnostic(JSON.stringify(seen));
  assert.ok(seen.refused! > CASES / 2, JSON.stringify(seen));
});

test("an installer-style signed layout (Sigstore bundles as referrers) damaged anywhere, or with a bundle or referrer of the wrong shape under correct digests, verifies or is refused cleanly", async (t) => {
  const signed = join(dir, "bundled.oci.tar");
  await writeFile(signed, base.tar);
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  await signBundled(signed, privateKey, EPOCH, false);
  const bytes = await readFile(signed);
  const verifies: Reader = async (file) => {
    await verifyBundled(file, [{ name: "test key", key: publicKey }]);
  };
  const damaged = await fuzz("bundled", 5, (next) => MUTATIONS[int(next, MUTATIONS.length)]!(bytes, next), verifies);
  // the referrer's manifest or its bundle confused, then every digest up to index.json made to match again
  const { readTar } = await import("../../src/oci/tar-read.ts");
  const files = new Map((await readTar(bytes)).filter((e) => e.type === "file").map((e) => [e.path, e.data ?? Buffer.alloc(0)]));
  const blobAt = (digest: string) => files.get(`blobs/${digest.replace(":", "/")}`)!;
  const index = JSON.parse(files.get("index.json")!.toString()) as { manifests: { digest: string; size: number; artifactType?: string }[] };
  const entry = index.manifests.find((m) => m.artifactType)!;
  const referrer = JSON.parse(blobAt(entry.digest).toString()) as { layers: { digest: string; size: number }[] };
  const confused = await fuzz("bundled-json", 6, (next) => {
    const copy = new Map(files);
    const put = (data: Buffer) => {
      copy.set(`blobs/${digestOf(data).replace(":", "/")}`, data);
      return { digest: digestOf(data), size: data.length };
    };
    let manifestBytes: Buffer;
    let what: string;
    if (next() < 0.5) {
      const bundle = confusedJson(blobAt(referrer.layers[0]!.digest).toString(), next);
      what = `bundle: ${bundle.what}`;
      manifestBytes = Buffer.from(JSON.stringify({ ...referrer, layers: [{ ...referrer.layers[0], ...put(bundle.bytes) }] }));
    } else {
      const manifest = confusedJson(blobAt(entry.digest).toString(), next);
      what = `referrer: ${manifest.what}`;
      manifestBytes = manifest.bytes;
    }
    const newEntry = { ...entry, ...put(manifestBytes) };
    copy.set("index.json", Buffer.from(JSON.stringify({ ...index, manifests: index.manifests.map((m) => (m === entry ? newEntry : m)) })));
    return { bytes: layoutTar([...copy].map(([path, data]) => ({ path, data })), EPOCH), what };
  }, verifies);
  t.diagnostic(JSON.stringify({ damaged, confused }));
  assert.ok(damaged.refused! > CASES / 2, JSON.stringify(damaged));
  assert.ok(confused.refused! > 0, JSON.stringify(confused));
});

test("an image asked for one architecture is refused when it is for another, naming both; without one asked, the only image is read", async () => {
  const { installerImage } = await import("../../src/oci/installer.ts");
  const { memoryLayout, readImage } = await import("../../src/oci/layout-read.ts");
  const image = installerImage({ arches: [{ arch: "aarch64", files: [{ name: "f", data: Buffer.from("x") }] }], epoch: EPOCH, version: "1", refName: "1" });
  const blobs = [image.index, ...image.images.flatMap((i) => [i.manifest, ...i.blobs])];
  const layout = memoryLayout("arm.oci", image.index.descriptor, blobs);
  assert.equal((await readImage(layout)).config.architecture, "arm64");
  assert.equal((await readImage(layout, { architecture: "arm64" })).config.architecture, "arm64");
  await assert.rejects(readImage(layout, { architecture: "amd64" }), /arm\.oci: an image for arm64, not amd64; give the image built for amd64/);
});
