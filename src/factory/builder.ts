/**
 * Makes a schematic's image for the factory's release: a custom profile on the schematic's platform,
 * built by `bronze build` (from the release's cached steps: only the custom part is made), its published
 * files stored in the registry, its output directory removed. Requests for the same image while it is
 * being built wait for that one build; at most `jobs` builds run at once.
 */
import { outputDirName } from "../profile/profile.ts";
import { randomUUID, sign, type KeyObject } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BronzeError } from "../core/errors.ts";
import { run } from "../core/exec.ts";
import { FILES } from "../core/outputs.ts";
import type { CatalogEntry } from "./catalog.ts";
import { extensionChoice, type Schematic } from "./schematic.ts";
import type { AssetFile, FactoryStore } from "./store.ts";

export interface BuilderOptions {
  projectRoot: string;
  version: string;
  store: FactoryStore;
  catalog: readonly CatalogEntry[];
  /** public keys (PEM paths) an extension image must be signed by */
  trustedKeys: readonly string[];
  /** builds at once */
  jobs: number;
  /** given to every `bronze build` (the shared cache, the registry connection) */
  buildArgs: readonly string[];
  /** given to the builds of schematics that ask for Secure Boot (the db key and certificate) */
  secureBootArgs: readonly string[];
  log: (line: string) => void;
  /** signs the installer (and attests it) and every file (FILE.sig, ECDSA over its sha256, as openssl dgst -sign makes) */
  signingKey: KeyObject;
}

/** The signature of a file: `openssl dgst -sha256 -verify KEY.pub -signature FILE.sig FILE` checks it. */
export const SIGNATURE_SUFFIX = ".sig";

/** What a schematic's extension item is built from: the catalog's entry (the last of that name unless pinned), or the image. */
function extensionSource(item: string, catalog: readonly CatalogEntry[]): { from: { build: string } | { image: string }; name: string; talos: boolean } {
  const choice = extensionChoice(item);
  if (choice.kind === "image") return { from: { image: choice.reference }, name: item, talos: false };
  const entry = catalog.filter((e) => e.name === choice.name && (!choice.digest || (e.source.kind === "image" && e.source.digest === choice.digest))).at(-1);
  if (!entry) throw new BronzeError(`extension '${item}' is no longer in the catalog`);
  const from = entry.source.kind === "build" ? { build: entry.source.dir } : { image: entry.source.reference };
  return { from, name: entry.name, talos: entry.talos === true };
}

/** The profile a schematic is built as: JSON, which YAML reads as it is. `trustedKeys`: absolute paths. */
export function schematicProfile(id: string, schematic: Schematic, catalog: readonly CatalogEntry[], trustedKeys: readonly string[]): { name: string; text: string } {
  const name = `factory-${id.slice(0, 12)}`;
  const sources = schematic.extensions.map((e) => extensionSource(e, catalog));
  const talos = [...new Set(sources.filter((e) => e.talos).map((e) => e.name))];
  const profile = {
    name,
    description: `bronze factory schematic ${id}`,
    base: schematic.platform,
    extensions: sources.map((e) => e.from),
    kernelArgs: schematic.kernelArgs,
    ...(schematic.outputs ? { outputs: schematic.outputs } : {}),
    ...(trustedKeys.length ? { trustedKeys } : {}),
    ...(talos.length ? { talosExtensions: talos } : {}),
  };
  return { name, text: `${JSON.stringify(profile, null, 2)}\n` };
}

/** A failed build is answered as failed for this long before it is tried again. */
const FAILURE_MEMORY_MS = 60_000;
/**
 * Factories on one registry share the work through a claim each renews while it builds: another sees a
 * claim younger than the lease and waits for the image instead of building it; a claim left by a factory
 * that died goes stale. The registry has no compare-and-swap: a claim counts once read back after the
 * settling time, so two that claim at once see the same (last) writer. The settling time must outlast the
 * spread between two factories' writes, which a loaded host or a remote registry stretches: a second
 * costs a first build little (a build takes several) and leaves room for both.
 */
const LEASE_MS = 5 * 60_000;
const RENEW_MS = 60_000;
const SETTLE_MS = 1_000;
const POLL_MS = 1_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class ImageBuilder {
  private readonly options: BuilderOptions;
  private readonly building = new Map<string, Promise<AssetFile[]>>();
  private readonly failed = new Map<string, { error: Error; at: number }>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  /** this process, in the claims it writes */
  private readonly instance = randomUUID();

  constructor(options: BuilderOptions) {
    this.options = options;
  }

  /** Whether this process is building (or about to build) the image of `id` now. */
  isBuilding(id: string): boolean {
    return this.building.has(id);
  }

  /** The stored files of the image of `id`: stored already, being built, or built now. */
  image(id: string, schematic: Schematic): Promise<AssetFile[]> {
    const pending = this.building.get(id);
    if (pending) return pending;
    const failure = this.failed.get(id);
    if (failure && Date.now() - failure.at < FAILURE_MEMORY_MS) return Promise.reject(failure.error);
    const made = this.stored(id, schematic)
      .catch((error: unknown) => {
        this.failed.set(id, { error: error as Error, at: Date.now() });
        this.options.log(`build of ${id} failed: ${(error as Error).message}`);
        throw error;
      })
      .finally(() => this.building.delete(id));
    // whoever asked may have stopped waiting: a failure is kept above, never left unhandled
    made.catch(() => undefined);
    this.building.set(id, made);
    return made;
  }

  /** Whether this process may build the image of `id`: no other factory holds a live claim, and this one's stuck. */
  private async claim(id: string): Promise<boolean> {
    const { store, version } = this.options;
    const current = await store.buildClaim(id, version);
    if (current && current.owner !== this.instance && Date.now() - current.at < LEASE_MS) return false;
    await store.putBuildClaim(id, version, { owner: this.instance, at: Date.now() });
    await sleep(SETTLE_MS);
    return (await store.buildClaim(id, version))?.owner === this.instance;
  }

  private async stored(id: string, schematic: Schematic): Promise<AssetFile[]> {
    const { store, version, log } = this.options;
    const there = await store.image(id, version);
    if (there) return there;
    let told = false;
    while (!(await this.claim(id))) {
      if (!told) log(`${id} is being built by another factory on the registry: waiting for it`);
      told = true;
      await sleep(POLL_MS);
      const built = await store.image(id, version);
      if (built) return built;
    }
    const renew = setInterval(() => void store.putBuildClaim(id, version, { owner: this.instance, at: Date.now() }).catch(() => undefined), RENEW_MS);
    await this.slot();
    let done = false;
    try {
      // another factory process may have stored it meanwhile
      const now = await store.image(id, version);
      done = now !== undefined;
      if (now) return now;
      // build() stores the installer before this stores the files: an image is served only once all of it is there
      await store.putImage(id, version, await this.build(id, schematic));
      const files = await store.image(id, version);
      if (!files) throw new Error(`internal: the image of ${id} is not found right after it was stored`);
      done = true;
      return files;
    } finally {
      clearInterval(renew);
      this.release();
      // a build that failed gives its claim up: another factory need not wait for the lease to end
      if (!done) await store.putBuildClaim(id, version, { owner: this.instance, at: 0 }).catch(() => undefined);
    }
  }

  private async build(id: string, schematic: Schematic): Promise<{ name: string; data: Buffer }[]> {
    const { projectRoot, catalog, trustedKeys, buildArgs, secureBootArgs, log } = this.options;
    const started = Date.now();
    const { name, text } = schematicProfile(id, schematic, catalog, trustedKeys);
    const dir = await mkdtemp(join(tmpdir(), "bronze-factory-"));
    const outDir = join(projectRoot, "_out", outputDirName({ name, arch: schematic.arch }));
    try {
      const profileFile = join(dir, `${name}.yaml`);
      await writeFile(profileFile, text);
      log(`building ${id} (${schematic.platform}, ${schematic.extensions.length} extension(s)) as profile ${name}`);
      await run(join(projectRoot, "bin", "bronze"), ["build", "--profile", profileFile, "--arch", schematic.arch, ...buildArgs, ...(schematic.secureBoot ? secureBootArgs : [])], { cwd: projectRoot, logFile: join(dir, "build.log"), env: { CI: "true" } });
      const published = (await readdir(outDir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();
      const files = await Promise.all(published.map(async (file) => ({ name: file, data: await readFile(join(outDir, file)) })));
      await this.pushInstaller(id, join(outDir, FILES.installerLayout));
      const { signingKey } = this.options;
      files.push(...files.map((f) => ({ name: `${f.name}${SIGNATURE_SUFFIX}`, data: sign("sha256", f.data, signingKey) })));
      log(`built ${id} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${files.length} file(s)`);
      return files;
    } finally {
      await rm(outDir, { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async pushInstaller(id: string, layout: string): Promise<void> {
    if (!(await stat(layout).catch(() => undefined))) return;
    const { store, version, signingKey, log } = this.options;
    const { pushLayout } = await import("../registry/copy.ts");
    const ref = { ...store.installer(id), tag: version };
    const { signBeforeTag } = await import("../attest/push.ts");
    const beforeTag = signBeforeTag(store.client, ref, signingKey, (summary) => log(`installer of ${id}: ${summary}`));
    const pushed = await pushLayout(store.client, layout, ref, { chunkSize: 8 * 1024 * 1024, beforeTag });
    log(`installer of ${id} stored as ${ref.repository}:${version}@${pushed.digest}`);
  }

  private async slot(): Promise<void> {
    if (this.running < this.options.jobs) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}
