import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { BuildContext } from "../core/context.ts";
import { recipeDigest, sha256 } from "../core/hash.ts";
import { installerImage, type InstallerInput } from "../oci/installer.ts";
import { cachedStep } from "../core/step.ts";
import type { StoreEntry } from "../core/store.ts";
import { FILES } from "../core/outputs.ts";

/** A file of the installer: in memory, or in the cache with its digest (read only when the image is made). */
export type InstallerFile = { name: string; data: Buffer } | { name: string; from: string; sha256: string };

export interface InstallerStepInput extends Omit<InstallerInput, "arches"> {
  arches: { arch: string; files: InstallerFile[] }[];
}

/** The installer image in the cache: its layout as one tar and as a directory, and its digests. */
export interface InstallerArtifact {
  kind: "installer";
  key: string;
  tar: string;
  tarSha256: string;
  tarSize: number;
  /** the OCI image layout directory's files, by path in the layout */
  layout: { path: string; from: string }[];
  indexDigest: string;
  manifestDigests: string[];
}

const TAR = FILES.installerTar;
const LAYOUT = "layout";

const digestOf = (f: InstallerFile): string => ("data" in f ? sha256(f.data) : f.sha256);
const dataOf = async (f: InstallerFile): Promise<Buffer> => ("data" in f ? f.data : readFile(f.from));

/**
 * The installer image (oci/installer.ts), a cached step: its gzip layer takes most of a build that changed
 * nothing, so the same files and metadata are served from the cache instead of compressed again.
 */
export async function buildInstaller(input: InstallerStepInput, ctx: BuildContext): Promise<InstallerArtifact> {
  const { arches, ...metadata } = input;
  const inputs = {
    step: "installer",
    recipe: await recipeDigest(
      import.meta.url,
      ...["../oci/installer.ts", "../oci/image.ts", "../oci/layout.ts", "../oci/tar.ts"].map((m) => new URL(m, import.meta.url).href),
    ),
    ...metadata,
    arches: arches.map(({ arch, files }) => ({ arch, files: files.map((f) => ({ name: f.name, sha256: digestOf(f) })) })),
  };
  const produce = async (outDir: string): Promise<Record<string, string>> => {
    const loaded = await Promise.all(arches.map(async ({ arch, files }) => ({ arch, files: await Promise.all(files.map(async (f) => ({ name: f.name, data: await dataOf(f) }))) })));
    const image = installerImage({ ...metadata, arches: loaded });
    await writeFile(join(outDir, TAR), image.tar);
    for (const f of image.files) {
      await mkdir(dirname(join(outDir, LAYOUT, f.path)), { recursive: true });
      await writeFile(join(outDir, LAYOUT, f.path), f.data);
    }
    return {
      tarSha256: sha256(image.tar),
      tarSize: String(image.tar.length),
      indexDigest: image.index.descriptor.digest,
      manifestDigests: image.images.map((i) => i.manifest.descriptor.digest).join(" "),
      layout: image.files.map((f) => f.path).join(" "),
    };
  };
  return cachedStep(ctx, { name: "installer", inputs, produce, artifact: installerOf });
}

/** The installer of a cache entry: its tar and layout, with the digests its facts recorded. */
function installerOf(entry: StoreEntry): InstallerArtifact {
  const facts = entry.record.facts;
  return {
    kind: "installer",
    key: entry.key,
    tar: join(entry.dir, TAR),
    tarSha256: facts.tarSha256 ?? "",
    tarSize: Number(facts.tarSize),
    layout: (facts.layout ?? "").split(" ").filter(Boolean).map((path) => ({ path, from: join(entry.dir, LAYOUT, path) })),
    indexDigest: facts.indexDigest ?? "",
    manifestDigests: (facts.manifestDigests ?? "").split(" ").filter(Boolean),
  };
}
