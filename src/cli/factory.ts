import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { InputError } from "../core/errors.ts";
import { projectVersion } from "../core/version.ts";
import { parseReference, registryTarget } from "../registry/reference.ts";
import { wholeNumberOption } from "./number-option.ts";
import { connect, connectionOptions, type ConnectionOptions } from "./oci.ts";
import type { CliEnv } from "./commands.ts";
import type { WizardOffer } from "../factory/pages.ts";
import type { CatalogEntry } from "../factory/catalog.ts";
import type { KeyObject } from "node:crypto";

interface ServeOptions extends ConnectionOptions {
  listen: string;
  registry: string;
  catalog?: string;
  jobs: number;
  tokenFile?: string;
  rate: number;
  cacheFrom?: string;
  cacheTo?: string;
  signKey: string;
  trustedKeys: string[];
  secureBootKey?: string;
  secureBootCert?: string;
}

const positive = wholeNumberOption(1, 1_000_000, "give a whole number of at least 1");

/** The shipped profiles a schematic may start from: those that add no extensions of their own. */
async function shippedPlatforms(projectRoot: string): Promise<WizardOffer["platforms"]> {
  const { loadProfile } = await import("../profile/profile.ts");
  const dir = join(projectRoot, "profiles");
  const names = (await readdir(dir)).filter((f) => f.endsWith(".yaml")).sort();
  const profiles = await Promise.all(names.map((f) => loadProfile(join(dir, f))));
  return profiles.filter((p) => p.extensions.length === 0).map((p) => ({ name: p.name, description: p.description, outputs: p.outputs }));
}

function listenAddress(text: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw new InputError(`--listen ${text}: give HOST:PORT, e.g. 127.0.0.1:8080 (port 0: any free port)`);
  return { host: (match[1] ?? "").replace(/^\[|\]$/g, ""), port };
}

/** `bronze factory serve`: custom images on demand, all state in a registry. */
export function registerFactoryCommands(program: Command, { projectRoot }: CliEnv): void {
  const factory = program.command("factory").description("custom images on demand: schematics in, images out (all state in an OCI registry)");
  connectionOptions(
    factory
      .command("serve")
      .description("serve POST /schematics, GET /schematics/ID and GET|HEAD /image/ID/VERSION/FILE for this tree's release")
      .requiredOption("--listen <host:port>", "where to listen, e.g. 127.0.0.1:8080 (port 0: any free one)")
      .requiredOption("--registry <repository>", "HOST[:PORT]/REPOSITORY under which schematics and built images are kept")
      .option("--catalog <dir|ref>", "the extensions offered: a catalog in a registry (HOST/REPO:TAG, as 'bronze factory catalog publish' writes it; needs --trusted-keys) or a directory of extension sources (default: this tree's extensions/)")
      .option("--secure-boot-key <key>", "sign the UKI and systemd-boot of schematics with secureBoot: true with this db key (PEM, as bronze build --secure-boot-key); needs --secure-boot-cert")
      .option("--secure-boot-cert <cert>", "the certificate of --secure-boot-key, as enrolled in the firmware's db")
      .option("--trusted-keys <pem...>", "public keys (ECDSA P-256, PEM) the catalog and every extension image must be signed by; with them a schematic may also name an image HOST/REPO@sha256:... signed by one", [] as string[])
      .option("-j, --jobs <n>", "image builds at once", positive, 1)
      .option("--token-file <file>", "creating a schematic needs Authorization: Bearer <the token in this file>")
      .option("--rate <n>", "requests one client address may make per minute", positive, 600)
      .option("--cache-from <repository>", "shared cache the builds take steps from (as bronze build --cache-from)")
      .option("--cache-to <repository>", "shared cache the builds send their steps to (as bronze build --cache-to)")
      .requiredOption("--sign-key <key>", "sign everything served with this ECDSA P-256 key (PEM): the installer signed and attested (as bronze push --sign-key), each file beside its FILE.sig"),
  ).action(async (opts: ServeOptions) => serve(projectRoot, opts));

  connectionOptions(
    factory
      .command("catalog")
      .description("the catalog a factory offers, in a registry")
      .command("publish")
      .description("push extension images (as 'bronze extension build' writes them) into one repository, each signed, and the catalog's index listing them, signed, under TAG")
      .argument("<ref>", "HOST[:PORT]/REPOSITORY:TAG of the catalog")
      .argument("<layouts...>", "extension images: OCI layout directories or tars")
      .requiredOption("--sign-key <key>", "sign the images and the index with this ECDSA P-256 key (PEM); factories trust its public half (--trusted-keys)")
      .option("--admit-talos <name...>", "offer these Talos-built extensions (compatibility: talos) too: only without kernel modules, their lib/ placed under usr/lib/", [] as string[]),
  ).action(async (refText: string, layouts: string[], opts: ConnectionOptions & { signKey: string; admitTalos: string[] }) => {
    const ref = parseReference(refText);
    const key = await (await import("../oci/cosign.ts")).loadSigningKey(opts.signKey, "--sign-key");
    const { publishCatalog } = await import("../factory/catalog.ts");
    const published = await publishCatalog(await connect(ref, opts), ref, layouts, key, { admitTalos: opts.admitTalos, osVersion: await projectVersion(projectRoot) });
    console.log(`published catalog ${ref.registry}/${ref.repository}:${ref.tag ?? ""}@${published.digest}, signed: ${published.entries.map((e) => `${e.name} ${e.version} (${e.digest})`).join(", ")}`);
  });
}

async function readToken(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  const token = (await readFile(file, "utf8").catch(() => {
    throw new InputError(`--token-file ${file}: cannot read it`);
  })).trim();
  if (!token) throw new InputError(`--token-file ${file}: the file is empty`);
  return token;
}

/** The catalog --catalog names (a registry's, checked against the trusted keys, or a directory's). */
async function catalogOf(projectRoot: string, opts: ServeOptions, trusted: readonly KeyObject[], log: (line: string) => void): Promise<CatalogEntry[]> {
  const { loadCatalog, loadRegistryCatalog } = await import("../factory/catalog.ts");
  const ref = opts.catalog ? await registryTarget(opts.catalog) : undefined;
  if (!ref) return loadCatalog(opts.catalog ?? join(projectRoot, "extensions"));
  if (!trusted.length) throw new InputError(`--catalog ${opts.catalog ?? ""} is in a registry: give --trusted-keys with the public key it is signed by`);
  return loadRegistryCatalog(await connect(ref, opts), ref, trusted, log);
}

/** What each `bronze build` of the factory is given: the shared cache, and how to reach registries. */
const buildArguments = (opts: ServeOptions): string[] => [
  ...(opts.cacheFrom ? ["--cache-from", opts.cacheFrom] : []),
  ...(opts.cacheTo ? ["--cache-to", opts.cacheTo] : []),
  ...(opts.plainHttp ? ["--plain-http"] : []),
  ...(opts.insecure ? ["--insecure"] : []),
  ...(opts.caFile ? ["--ca-file", opts.caFile] : []),
];

async function serve(projectRoot: string, opts: ServeOptions): Promise<void> {
  const { host, port } = listenAddress(opts.listen);
  const base = parseReference(opts.registry);
  if (base.tag || base.digest) throw new InputError(`--registry ${opts.registry}: give a repository without a tag or digest`);
  const token = await readToken(opts.tokenFile);
  const { loadSigningKey, loadTrustedKey } = await import("../oci/cosign.ts");
  const signingKey = await loadSigningKey(opts.signKey, "--sign-key");
  const trustedKeys = opts.trustedKeys.map((k) => resolve(k));
  const trusted = await Promise.all(trustedKeys.map((k) => loadTrustedKey(k)));
  const log = (line: string) => console.error(`bronze factory: ${line}`);
  const catalog = await catalogOf(projectRoot, opts, trusted, log);
  const [{ FactoryStore }, { ImageBuilder }, { Factory }, { cosignSignatureProblem }] = await Promise.all([
    import("../factory/store.ts"),
    import("../factory/builder.ts"),
    import("../factory/server.ts"),
    import("../registry/cosign-tag.ts"),
  ]);
  const checkImage = trusted.length
    ? async (reference: string, digest: string) => {
        const ref = parseReference(reference);
        return cosignSignatureProblem(await connect(ref, opts), ref, digest, trusted);
      }
    : undefined;
  const version = await projectVersion(projectRoot);
  const store = new FactoryStore(await connect(base, opts), base);
  const buildArgs = buildArguments(opts);
  if (Boolean(opts.secureBootKey) !== Boolean(opts.secureBootCert)) throw new InputError("--secure-boot-key and --secure-boot-cert come together: give the db key (PEM) and its certificate");
  // checked now, as a build would: a key that does not match its certificate is refused before serving
  if (opts.secureBootKey && opts.secureBootCert) {
    const { loadSigner } = await import("../secureboot/signer.ts");
    await loadSigner({ key: opts.secureBootKey, cert: opts.secureBootCert }, { key: "--secure-boot-key", cert: "--secure-boot-cert", passphrase: "--secure-boot-key-passphrase-file" });
  }
  const secureBootArgs = opts.secureBootKey && opts.secureBootCert ? ["--secure-boot-key", resolve(opts.secureBootKey), "--secure-boot-cert", resolve(opts.secureBootCert)] : [];
  const builder = new ImageBuilder({ projectRoot, version, store, catalog, trustedKeys, jobs: opts.jobs, buildArgs, secureBootArgs, log, signingKey });
  const platforms = await shippedPlatforms(projectRoot);
  const server = new Factory({ version, store, builder, platforms, catalog, ...(checkImage ? { checkImage } : {}), secureBoot: secureBootArgs.length > 0, token, ratePerMinute: opts.rate, waitMs: 500, log });
  const { address, server: http } = await server.listen(host, port);
  const offered = catalog.map((e) => `${e.name} ${e.version}`).join(", ");
  console.log(`bronze factory: release ${version}, listening on http://${address}; platforms ${platforms.map((p) => p.name).join(", ")}; extensions ${offered}`);
  const signal = await new Promise<string>((done) => {
    for (const name of ["SIGINT", "SIGTERM"] as const) process.once(name, () => done(name));
  });
  // all state is in the registry: nothing to save; a build under way is stopped with the process (its claim goes stale)
  log(`${signal}: stopping`);
  http.close();
  http.closeAllConnections();
  process.exit(0);
}
