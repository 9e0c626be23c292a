// The CLI's entry: a build whose stamp says nothing changed is answered here, before the rest of bronze
// loads (build/stamp.ts); every other command goes to main.ts.
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Set by scripts/bundle.ts: only a bundle's entry file changes with every module of bronze. */
declare const BRONZE_BUNDLE: boolean | undefined;

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const argv = process.argv.slice(2);

async function answeredByStamp(): Promise<boolean> {
  if (typeof BRONZE_BUNDLE === "undefined" || argv[0] !== "build") return false;
  const started = performance.now();
  // loaded for a build only: other commands start without the stamp's modules
  const { unchangedSince } = await import("../pipeline/stamp.ts");
  const stamp = await unchangedSince(projectRoot, argv);
  if (!stamp) return false;
  // as every build does: a key left by a killed one is destroyed
  const { removeLeftoverKeys } = await import("../kernel/signing-key.ts");
  await removeLeftoverKeys();
  const ms = (performance.now() - started).toFixed(0);
  console.log(
    `bronze: profile '${stamp.profile}' is up to date: what its build of ${stamp.builtAt} read, used and published ` +
      `is unchanged (checked in ${ms} ms); 0 build step(s) ran (everything from cache)`,
  );
  for (const line of stamp.summary) console.log(line);
  return true;
}

if (!(await answeredByStamp())) {
  const { main } = await import("./main.ts");
  process.exitCode = await main(argv);
}
