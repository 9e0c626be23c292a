// Bundles the CLI into ES modules (.tools/cli/bronze.mjs and the chunks it imports when needed) so that
// it starts without resolving, reading and type-stripping some forty modules, and a build answered by its
// stamp loads only the entry: bin/bronze runs it, and makes it again when a source, this script or the
// installed dependencies are newer.
// Each module keeps its own import.meta.url (recipe digests and the project's paths are read from it),
// so the bundle computes the same cache keys as the sources it was made from.
import { readdir, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(root, ".tools", "cli");
const out = join(outDir, "bronze.mjs");
// the bundle sits two directories below the project, as every module of src/ does
const fromBundle = (file: string) => `new URL(${JSON.stringify(`../../${relative(root, file)}`)}, import.meta.url).href`;

const ownUrls: Plugin = {
  name: "own-import-meta-url",
  setup(b) {
    b.onLoad({ filter: /\/src\/.*\.ts$/ }, async (args) => {
      const text = await readFile(args.path, "utf8");
      return { contents: text.replaceAll("import.meta.url", fromBundle(args.path)), loader: "ts" };
    });
  },
};

// esbuild writes a fresh directory; its chunks are named by content (and the entry by its chunks'
// names), so they join the old ones without replacing any, the entry is renamed in last, and only then
// go the chunks no entry names
const tmp = join(outDir, `.new-${process.pid}`);
try {
  const result = await build({
    entryPoints: { bronze: join(root, "src", "cli", "entry.ts") },
    bundle: true,
    splitting: true,
    platform: "node",
    format: "esm",
    target: "node22",
    outdir: tmp,
    outExtension: { ".js": ".mjs" },
    chunkNames: "[name]-[hash]",
    metafile: true,
    plugins: [ownUrls],
    logLevel: "error",
    define: { BRONZE_BUNDLE: "true" },
    // CommonJS dependencies call require() for Node's own modules
    banner: { js: 'import { createRequire as __bronzeRequire } from "node:module"; const require = __bronzeRequire(import.meta.url);' },
  });
  const written = Object.keys(result.metafile.outputs).map((file) => basename(file));
  for (const name of written.filter((n) => n !== basename(out))) await rename(join(tmp, name), join(outDir, name));
  // a bronze already running from the old entry has its chunks until it exits: they go only now
  await rename(join(tmp, basename(out)), out);
  for (const name of await readdir(outDir)) {
    if (name.endsWith(".mjs") && !written.includes(name)) await rm(join(outDir, name), { force: true });
  }
} finally {
  await rm(tmp, { recursive: true, force: true });
}
