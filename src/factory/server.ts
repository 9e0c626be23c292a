/**
 * The factory's HTTP front: schematics in, images out. Every answer comes within about a second: an
 * image that is not stored yet is built (or joined, when it is being built) and the request answered
 * 202 Accepted with Retry-After until it is there (an iPXE script that waits, a 503 on the registry front). No part of a request names a file: IDs, versions and
 * file names are checked against strict patterns and looked up in the registry, never on disk.
 *   POST /schematics                          a schematic (YAML) -> 201 {"id": ...}
 *   GET  /schematics/ID                       its canonical JSON
 *   GET|HEAD /image/ID/VERSION/FILE[.sha256]  a file of its image (uki.efi, image.iso, ...), or its digest
 *   GET / and /ui?...                         the wizard (pages.ts), each step a URL
 *   GET /pxe/ID/VERSION/ARCH                  an iPXE script booting its kernel and initramfs from here
 *                                             (while it is built: a script that waits and asks again)
 *   /v2/installer/ID/...                      its installer, read-only OCI distribution (bronze upgrade --image,
 *                                             skopeo); the VERSION tag while it is built: 503 with Retry-After
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import { stringify } from "yaml";
import { ARCH_NAMES, archNamed, ARCHES } from "../core/arch.ts";
import { BronzeError, InputError } from "../core/errors.ts";
import { FILES, OUTPUTS, type Output } from "../core/outputs.ts";
import { ipxeScript } from "../disk/pxe.ts";
import { BUILDING_HEADER } from "../registry/transport.ts";
import { CONTENT_SECURITY_POLICY, linksPage, wizardPage, type WizardOffer } from "./pages.ts";
import type { ImageBuilder } from "./builder.ts";
import type { CatalogEntry } from "./catalog.ts";
import { RateLimit } from "./rate-limit.ts";
import { extensionChoice, parseSchematic, SCHEMATIC_ID, SCHEMATIC_MAX_BYTES, schematicBytes, schematicId, type Offer, type Schematic } from "./schematic.ts";
import type { AssetFile, FactoryStore } from "./store.ts";

export interface FactoryOptions {
  version: string;
  store: FactoryStore;
  builder: ImageBuilder;
  /** the platforms offered, as the wizard shows them */
  platforms: WizardOffer["platforms"];
  catalog: readonly CatalogEntry[];
  /** whether builds may be Secure Boot signed (the factory holds a db key) */
  secureBoot: boolean;
  /** given when images outside the catalog may be named: why one is not signed by a trusted key, or undefined */
  checkImage?: (reference: string, digest: string) => Promise<string | undefined>;
  /** when set, creating a schematic needs `Authorization: Bearer <token>` */
  token?: string;
  /** requests one client address may make per minute */
  ratePerMinute: number;
  /** how long a request for an image being built waits before it is answered 202 */
  waitMs: number;
  log: (line: string) => void;
}

const FILE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
/** Outputs as large as the disk they describe: a file is held in memory while it is stored and served. */
const UNSERVED_OUTPUTS: readonly Output[] = ["disk", "vhd"];
const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** tags of an installer repository besides the version: where signatures and referrers are kept */
const SIDE_TAG = /^sha256-[0-9a-f]{64}(\.sig|\.att)?$/;
const RETRY_AFTER_S = 5;

class HttpError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

async function body(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) throw new HttpError(413, `a schematic is at most ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `a schematic is at most ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export class Factory {
  private readonly options: FactoryOptions;
  private readonly rate: RateLimit;
  private readonly offer: Offer;
  private readonly wizardOffer: WizardOffer;
  private readonly schematics = new Map<string, Schematic>();

  constructor(options: FactoryOptions) {
    this.options = options;
    this.rate = new RateLimit(options.ratePerMinute);
    const { catalog, platforms, version } = options;
    const digestOf = (e: CatalogEntry) => (e.source.kind === "image" ? e.source.digest : undefined);
    this.offer = { platforms: platforms.map((p) => p.name), extensions: catalog.map((e) => ({ name: e.name, digest: digestOf(e) })), images: options.checkImage !== undefined, secureBoot: options.secureBoot };
    const extensions = catalog.map((e) => ({ name: e.name, version: e.version, description: e.description, choice: digestOf(e) ? `${e.name}@${digestOf(e) ?? ""}` : e.name }));
    const outputs = OUTPUTS.filter((o) => !UNSERVED_OUTPUTS.includes(o));
    this.wizardOffer = { version, arches: ARCH_NAMES, platforms, extensions, secureBoot: options.secureBoot, outputs };
  }

  /** Serves on `host:port` (port 0: any free one); resolves with the address it listens on. */
  async listen(host: string, port: number): Promise<{ server: Server; address: string }> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, resolve);
    });
    const bound = server.address();
    const address = typeof bound === "object" && bound ? `${bound.address.includes(":") ? `[${bound.address}]` : bound.address}:${bound.port}` : `${host}:${port}`;
    return { server, address };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const admission = this.rate.admit(req.socket.remoteAddress ?? "");
      if (!admission.admitted) {
        throw new HttpError(429, `more than ${this.options.ratePerMinute} requests in a minute from this address; wait`, { "Retry-After": String(admission.retryAfterS) });
      }
      await this.route(req, res);
    } catch (error) {
      const known = error instanceof HttpError ? error : error instanceof InputError ? new HttpError(400, error.message) : undefined;
      if (!known) this.options.log(`${req.method ?? ""} ${req.url ?? ""}: ${error instanceof BronzeError ? error.message : String((error as Error).stack ?? error)}`);
      const answer = known ?? new HttpError(500, error instanceof BronzeError ? error.message : "internal error (logged by the factory)");
      if (res.headersSent) {
        res.destroy();
        return;
      }
      send(res, req, answer.status, `${answer.message}\n`, { "Content-Type": "text/plain; charset=utf-8", ...answer.headers });
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // the raw path, not decoded: an escaped '/' or '..' fails the patterns below
    const parts = path(req).split("/").slice(1);
    const method = req.method ?? "GET";
    if (parts[0] === "schematics" && parts.length === 1) {
      if (method !== "POST") throw new HttpError(405, "POST a schematic to /schematics", { Allow: "POST" });
      return this.createSchematic(req, res);
    }
    if (method !== "GET" && method !== "HEAD") throw new HttpError(405, `${method} is not served here; use GET or HEAD`, { Allow: "GET, HEAD" });
    if (parts[0] === "schematics" && parts.length === 2) {
      return send(res, req, 200, await this.storedSchematic(this.checkedId(parts[1])), { "Content-Type": "application/json" });
    }
    if ((parts[0] === "" || parts[0] === "ui") && parts.length === 1) return this.wizard(req, res);
    if (parts[0] === "image" && parts.length === 4) return this.imageFile(req, res, parts[1], parts[2], parts[3]);
    if (parts[0] === "pxe" && parts.length === 4) return this.pxeScript(req, res, parts[1], parts[2], parts[3]);
    if (parts[0] === "v2") return this.distribution(req, res, parts.slice(1));
    throw new HttpError(404, "not found: the factory serves POST /schematics, GET /schematics/ID and GET|HEAD /image/ID/VERSION/FILE");
  }

  private checkedId(text: string | undefined): string {
    if (!text || !SCHEMATIC_ID.test(text)) throw new HttpError(400, `'${(text ?? "").slice(0, 80)}' is not a schematic ID (64 lowercase hex digits, as POST /schematics answers)`);
    return text;
  }

  private async createSchematic(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { token } = this.options;
    if (token && !bearerMatches(req.headers.authorization, token)) throw new HttpError(401, "creating a schematic needs Authorization: Bearer <token>", { "WWW-Authenticate": 'Bearer realm="bronze factory"' });
    const schematic = await this.checkedImages(parseSchematic("schematic", await body(req, SCHEMATIC_MAX_BYTES), this.offer));
    const id = schematicId(schematic);
    await this.options.store.putSchematic(id, schematicBytes(schematic));
    this.options.log(`schematic ${id} stored`);
    send(res, req, 201, `${JSON.stringify({ id })}\n`, { "Content-Type": "application/json", Location: `/schematics/${id}` });
  }

  /**
   * The schematic, once what it would build can be served (no whole-disk outputs) and every image it names
   * outside the catalog is found signed by a trusted key.
   */
  private async checkedImages(schematic: Schematic): Promise<Schematic> {
    const outputs = schematic.outputs ?? this.options.platforms.find((p) => p.name === schematic.platform)?.outputs ?? [];
    const unserved = outputs.filter((o) => UNSERVED_OUTPUTS.includes(o));
    if (unserved.length) {
      throw new HttpError(400, `the factory does not serve ${unserved.join(", ")} (a file as large as the disk${schematic.outputs ? "" : `, which platform ${schematic.platform} makes`}); name outputs such as raw.zst, raw.xz, qcow2, gcp or ova instead`);
    }
    for (const item of schematic.extensions) {
      const choice = extensionChoice(item);
      if (choice.kind !== "image" || !this.options.checkImage) continue;
      const problem = await this.options.checkImage(choice.reference, choice.digest);
      if (problem) throw new HttpError(400, `extension ${choice.reference} is not taken: ${problem}`);
    }
    return schematic;
  }

  private async storedSchematic(id: string): Promise<Buffer> {
    const bytes = await this.options.store.schematic(id);
    if (!bytes) throw new HttpError(404, `no schematic ${id}; POST it to /schematics first`);
    return bytes;
  }

  /**
   * The stored schematic, read as a request would be (against this process's catalog, which does not
   * change while it runs); kept once read: an ID names its bytes for good.
   */
  private async schematic(id: string): Promise<Schematic> {
    const known = this.schematics.get(id);
    if (known) return known;
    const schematic = parseSchematic(`schematic ${id}`, (await this.storedSchematic(id)).toString("utf8"), this.offer);
    this.schematics.set(id, schematic);
    return schematic;
  }

  private async imageFile(req: IncomingMessage, res: ServerResponse, idText: string | undefined, version: string | undefined, fileText: string | undefined): Promise<void> {
    const id = this.checkedId(idText);
    this.checkedVersion(version);
    if (!fileText || !FILE.test(fileText)) throw new HttpError(400, `'${(fileText ?? "").slice(0, 80)}' is not a file name of an image`);
    const files = await this.ready(id, await this.schematic(id));
    if (!files) throw new HttpError(202, this.stillBuilding(id), { "Retry-After": String(RETRY_AFTER_S) });
    const digestOnly = fileText.endsWith(".sha256");
    const name = digestOnly ? fileText.slice(0, -".sha256".length) : fileText;
    const file = files.find((f) => f.name === name);
    if (!file) throw new HttpError(404, `the image of ${id} has no ${name}; it has ${files.map((f) => f.name).join(", ")}`);
    if (digestOnly) return send(res, req, 200, `${file.digest.replace(/^sha256:/, "")}  ${file.name}\n`, { "Content-Type": "text/plain; charset=utf-8" });
    const headers = { "Content-Type": "application/octet-stream", "Content-Disposition": `attachment; filename="${file.name}"`, ETag: `"${file.digest}"` };
    if (req.method === "HEAD") return send(res, req, 200, undefined, { ...headers, "Content-Length": String(file.size) });
    send(res, req, 200, await this.options.store.file(id, file), headers);
  }

  /** A step of the wizard; the last one stores the schematic (unless creation needs a token) and links its files. */
  private async wizard(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const query = new URLSearchParams((req.url ?? "").split("?")[1] ?? "");
    const wizard = this.wizardOffer;
    const html = { "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": CONTENT_SECURITY_POLICY };
    const version = query.get("version") ?? undefined;
    if (version !== undefined) this.checkedVersion(version);
    const choices = {
      version,
      platform: query.get("platform") ?? undefined,
      arch: query.get("arch") ?? undefined,
      extensions: query.has("extensions") ? query.getAll("ext") : undefined,
      args: query.get("args") ?? undefined,
    };
    if (!choices.version || !choices.platform || !choices.arch || !choices.extensions || choices.args === undefined) return send(res, req, 200, wizardPage(wizard, choices), html);
    const outputs = query.getAll("output");
    const request = {
      platform: choices.platform,
      arch: choices.arch,
      extensions: choices.extensions,
      kernelArgs: choices.args.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [],
      ...(outputs.length ? { outputs } : {}),
      secureBoot: query.get("secureboot") === "on",
    };
    const schematic = await this.checkedImages(parseSchematic("the wizard's choices", JSON.stringify(request), this.offer));
    const id = schematicId(schematic);
    if (!this.options.token) await this.options.store.putSchematic(id, schematicBytes(schematic));
    send(res, req, 200, linksPage(wizard, schematic, id, stringify(schematic), !this.options.token), html);
  }

  /** iPXE script for the image: its kernel and initramfs by path on this server, the image's command line. */
  private async pxeScript(req: IncomingMessage, res: ServerResponse, idText: string | undefined, version: string | undefined, archText: string | undefined): Promise<void> {
    const id = this.checkedId(idText);
    this.checkedVersion(version);
    const schematic = await this.schematic(id);
    const arch = archNamed(schematic.arch);
    if (archText !== arch.name && archText !== arch.oci) {
      throw new HttpError(404, `schematic ${id} is for ${arch.name} (${arch.oci}), not '${(archText ?? "").slice(0, 40)}'; known: ${ARCHES.map((a) => `${a.name} (${a.oci})`).join(", ")}`);
    }
    const ipxe = { "Content-Type": "text/plain; charset=utf-8" };
    const files = await this.ready(id, schematic);
    if (!files) {
      // iPXE takes any 2xx as the script: this one waits and comes back
      const again = ["#!ipxe", `echo bronze factory: ${this.stillBuilding(id)}`, `sleep ${RETRY_AFTER_S}`, `chain ${path(req)}`, ""].join("\n");
      return send(res, req, 200, again, ipxe);
    }
    const needed = [FILES.kernel, FILES.initramfs, FILES.manifest];
    const missing = needed.filter((n) => !files.some((f) => f.name === n));
    if (missing.length) throw new HttpError(404, `the image of ${id} has no ${missing.join(", ")}: network boot needs the kernel-initramfs output in the schematic's outputs`);
    const manifest = files.find((f) => f.name === FILES.manifest) as AssetFile;
    const record = JSON.parse((await this.options.store.file(id, manifest)).toString("utf8")) as { cmdline?: unknown; profile?: unknown };
    if (typeof record.cmdline !== "string") throw new BronzeError(`the image of ${id}: its ${FILES.manifest} records no command line`);
    const script = ipxeScript({ profile: String(record.profile), version: this.options.version, cmdline: record.cmdline }, `/image/${id}/${this.options.version}/`);
    send(res, req, 200, script, ipxe);
  }

  private checkedVersion(version: string | undefined): void {
    if (version !== this.options.version) throw new HttpError(404, `this factory serves release ${this.options.version}, not '${(version ?? "").slice(0, 40)}'`);
  }

  /** The installer repositories as a read-only registry: /v2/installer/ID/{manifests,blobs,referrers}/REFERENCE. */
  private async distribution(req: IncomingMessage, res: ServerResponse, parts: string[]): Promise<void> {
    const api = { "Docker-Distribution-API-Version": "registry/2.0" };
    if (parts.length === 1 && parts[0] === "") return send(res, req, 200, "{}\n", { ...api, "Content-Type": "application/json" });
    const [repository, idText, kind, reference = ""] = parts;
    if (repository !== "installer" || parts.length !== 4 || (kind !== "manifests" && kind !== "blobs" && kind !== "referrers")) {
      throw new HttpError(404, "the factory's registry serves /v2/installer/ID/manifests/VERSION and the blobs, signatures and referrers of those images");
    }
    const id = this.checkedId(idText);
    const method = req.method === "HEAD" ? "HEAD" : "GET";
    if (kind === "blobs") {
      if (!DIGEST.test(reference)) throw new HttpError(400, `'${reference.slice(0, 80)}' is not a blob digest`);
      const size = await this.options.store.installerBlobSize(id, reference);
      if (size === undefined) throw new HttpError(404, `no blob ${reference} in installer/${id}`);
      const headers = { ...api, "Content-Type": "application/octet-stream", "Docker-Content-Digest": reference, "Content-Length": String(size) };
      return send(res, req, 200, method === "HEAD" ? undefined : await this.options.store.installerBlob(id, reference, size), headers);
    }
    if (kind === "manifests" && reference === this.options.version) {
      // the release's tag is what builds: the answer waits for the image, never for long; bronze's own
      // client waits while the header is there (registry/transport.ts), others retry on 503
      if (!(await this.ready(id, await this.schematic(id)))) throw new HttpError(503, this.stillBuilding(id), { "Retry-After": String(RETRY_AFTER_S), [BUILDING_HEADER]: id });
    } else if (!DIGEST.test(reference) && !(kind === "manifests" && SIDE_TAG.test(reference))) {
      throw new HttpError(404, `installer/${id} has the tag ${this.options.version} (this factory's release), not '${reference.slice(0, 80)}'`);
    }
    const answer = await this.options.store.installerObject(id, method, kind, reference);
    const pass = ["content-type", "docker-content-digest", "content-length"].filter((h) => answer.headers[h] !== undefined);
    const headers = Object.fromEntries(pass.map((h) => [h, String(answer.headers[h])]));
    res.writeHead(answer.status, { ...api, "Cache-Control": "no-store", ...headers });
    res.end(method === "HEAD" ? undefined : answer.body);
  }

  /** The image's files once stored; undefined while it is built (here or by this request) past the wait. */
  private async ready(id: string, schematic: Schematic): Promise<AssetFile[] | undefined> {
    const { builder, store, version } = this.options;
    // only a build goes unwaited for: an image stored already is served however slowly the registry says so
    // (a remote one may take longer than the wait, and every request would be told to come back later)
    if (!builder.isBuilding(id)) {
      const stored = await store.image(id, version);
      if (stored) return stored;
    }
    const building = builder.image(id, schematic);
    return Promise.race([building, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), this.options.waitMs).unref())]);
  }

  /** What a request for an image still being built is told; each front answers with it in its own way. */
  private stillBuilding(id: string): string {
    return `the image of ${id} for ${this.options.version} is being built; ask again in ${RETRY_AFTER_S} s`;
  }
}

/** The request's path as it came, without its query. */
const path = (req: IncomingMessage) => (req.url ?? "/").split("?")[0] ?? "/";

function bearerMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(/^Bearer (.+)$/.exec(header ?? "")?.[1] ?? "");
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function send(res: ServerResponse, req: IncomingMessage, status: number, content: string | Buffer | undefined, headers: Record<string, string>): void {
  const data = typeof content === "string" ? Buffer.from(content) : content;
  res.writeHead(status, { "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", ...(data ? { "Content-Length": String(data.length) } : {}), ...headers });
  res.end(req.method === "HEAD" ? undefined : data);
}
