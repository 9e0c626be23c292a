// Bundles the CLI into one ES module (.tools/cli/bronze.mjs) so that it starts without resolving,
// reading and type-stripping some forty modules: bin/bronze runs it, and makes it again when a source,
// this script or the installed dependencies are newer.
// Each module keeps its own import.meta.url (recipe digests and the project's paths are read from it),
// so the bundle computes the same cache keys as the sources it was made from.
import { readFile, rename, rm } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
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

const tmp = `${out}.${process.pid}.tmp`;
try {
  await build({
    entryPoints: [join(root, "src", "cli", "main.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    outfile: tmp,
    plugins: [ownUrls],
    logLevel: "error",
    // CommonJS dependencies call require() for Node's own modules
    banner: { js: 'import { createRequire as __bronzeRequire } from "node:module"; const require = __bronzeRequire(import.meta.url);' },
  });
  // a bronze already running from the old bundle has read all of it: replacing it under it is safe
  await rename(tmp, out);
} finally {
  await rm(tmp, { force: true });
}
