import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { InputError } from "../core/errors.ts";
import { projectVersion } from "../core/version.ts";
import { parseReference } from "../registry/reference.ts";
import { wholeNumberOption } from "./number-option.ts";
import { connect, connectionOptions, type ConnectionOptions } from "./oci.ts";
import type { CliEnv } from "./commands.ts";
import { ARCH_NAMES } from "../core/arch.ts";
import type { WizardOffer } from "../factory/pages.ts";

interface ServeOptions extends ConnectionOptions {
  listen: string;
  registry: string;
  catalog?: string;
  jobs: number;
  tokenFile?: string;
  rate: number;
  cacheFrom?: string;
  cacheTo?: string;
  signKey?: string;
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
      .option("--catalog <dir>", "directory of extension sources offered by name (default: this tree's extensions/)")
      .option("-j, --jobs <n>", "image builds at once", positive, 1)
      .option("--token-file <file>", "creating a schematic needs Authorization: Bearer <the token in this file>")
      .option("--rate <n>", "requests one client address may make per minute", positive, 600)
      .option("--cache-from <repository>", "shared cache the builds take steps from (as bronze build --cache-from)")
      .option("--cache-to <repository>", "shared cache the builds send their steps to (as bronze build --cache-to)")
      .option("--sign-key <key>", "sign every image served with this ECDSA P-256 key (PEM): the installer signed and attested (as bronze push --sign-key), each file beside its FILE.sig"),
  ).action(async (opts: ServeOptions) => {
    const { host, port } = listenAddress(opts.listen);
    const base = parseReference(opts.registry);
    if (base.tag || base.digest) throw new InputError(`--registry ${opts.registry}: give a repository without a tag or digest`);
    const token = opts.tokenFile ? (await readFile(opts.tokenFile, "utf8").catch(() => {
      throw new InputError(`--token-file ${opts.tokenFile ?? ""}: cannot read it`);
    })).trim() : undefined;
    if (opts.tokenFile && !token) throw new InputError(`--token-file ${opts.tokenFile}: the file is empty`);
    const signingKey = opts.signKey ? await (await import("../oci/cosign.ts")).loadSigningKey(opts.signKey, "--sign-key") : undefined;
    const log = (line: string) => console.error(`bronze factory: ${line}`);
    const [{ loadCatalog }, { FactoryStore }, { ImageBuilder }, { Factory }] = await Promise.all([
      import("../factory/catalog.ts"),
      import("../factory/store.ts"),
      import("../factory/builder.ts"),
      import("../factory/server.ts"),
    ]);
    const catalog = await loadCatalog(opts.catalog ?? join(projectRoot, "extensions"));
    const version = await projectVersion(projectRoot);
    const store = new FactoryStore(await connect(base, opts), base);
    const forwarded = [
      ...(opts.cacheFrom ? ["--cache-from", opts.cacheFrom] : []),
      ...(opts.cacheTo ? ["--cache-to", opts.cacheTo] : []),
      ...(opts.plainHttp ? ["--plain-http"] : []),
      ...(opts.insecure ? ["--insecure"] : []),
      ...(opts.caFile ? ["--ca-file", opts.caFile] : []),
    ];
    const builder = new ImageBuilder({ projectRoot, version, store, catalog, jobs: opts.jobs, buildArgs: forwarded, log, ...(signingKey ? { signingKey } : {}) });
    const wizard: WizardOffer = { version, arches: ARCH_NAMES, platforms: await shippedPlatforms(projectRoot), extensions: catalog };
    const server = new Factory({ version, store, builder, wizard, token, ratePerMinute: opts.rate, waitMs: 500, log });
    const { address } = await server.listen(host, port);
    console.log(`bronze factory: release ${version}, listening on http://${address}; platforms ${wizard.platforms.map((p) => p.name).join(", ")}; extensions ${catalog.map((e) => e.name).join(", ")}`);
    await new Promise<void>((resolve) => {
      for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => resolve());
    });
  });
}
