import { BronzeError } from "../core/errors.ts";
import { digestOf } from "../oci/image.ts";
import { parseObject } from "../oci/descriptor.ts";
import { basicAuthorization, parseChallenge } from "./auth.ts";
import type { Reference } from "./reference.ts";
import { RegistryError, sendWithRetries, type HttpResponse, type TransportOptions } from "./transport.ts";

export const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** A client of one registry, speaking the OCI distribution API; authentication on demand. */
export class RegistryClient {
  readonly registry: string;
  private readonly options: TransportOptions;
  private readonly log: (line: string) => void;
  /** the Authorization header for each scope (bearer tokens are per scope) */
  private readonly authorizations = new Map<string, string>();
  /** bytes of blob content sent, for the push report */
  bytesUploaded = 0;

  constructor(registry: string, options: TransportOptions, log: (line: string) => void = () => undefined) {
    this.registry = registry;
    this.options = options;
    this.log = log;
  }

  url(path: string): URL {
    return new URL(path, `${this.options.scheme}://${this.registry}`);
  }

  /** Sends a request, answering an authentication challenge once (basic, or a bearer token for `scope`). */
  async request(method: string, target: string | URL, scope: string, headers: Record<string, string> = {}, body?: Buffer, retry = true): Promise<HttpResponse> {
    const url = typeof target === "string" ? this.url(target) : target;
    const send = (authorization?: string) =>
      sendWithRetries({ ...this.options, attempts: retry ? this.options.attempts : 1 }, method, url, { ...headers, ...(authorization ? { Authorization: authorization } : {}) }, body, this.log);
    let response = await send(this.authorizations.get(scope));
    if (response.status !== 401) return response;
    const header = response.headers["www-authenticate"];
    if (!header) throw new BronzeError(`${this.registry}: 401 without a WWW-Authenticate challenge`);
    const authorization = await this.authorize(parseChallenge(Array.isArray(header) ? (header[0] ?? "") : header), scope);
    this.authorizations.set(scope, authorization);
    response = await send(authorization);
    if (response.status === 401) throw this.denied();
    return response;
  }

  private denied(): BronzeError {
    return new BronzeError(
      `${this.registry}: authentication failed (401)${this.options.credentials ? ` for user '${this.options.credentials.username}'` : ", and no credentials were given"}; ` +
        "check --username/--password-stdin or the auths entry in docker's config.json",
    );
  }

  private async authorize(challenge: { scheme: string; params: Record<string, string> }, scope: string): Promise<string> {
    const credentials = this.options.credentials;
    if (challenge.scheme === "basic") {
      if (!credentials) throw this.denied();
      return basicAuthorization(credentials);
    }
    if (challenge.scheme !== "bearer" || !challenge.params.realm) throw new BronzeError(`${this.registry}: unsupported authentication challenge '${challenge.scheme}'`);
    const realm = new URL(challenge.params.realm);
    if (challenge.params.service) realm.searchParams.set("service", challenge.params.service);
    realm.searchParams.set("scope", challenge.params.scope ?? scope);
    const response = await sendWithRetries(this.options, "GET", realm, credentials ? { Authorization: basicAuthorization(credentials) } : {}, undefined, this.log);
    if (response.status === 401 || response.status === 403) throw this.denied();
    if (response.status !== 200) throw new BronzeError(`${realm.host}: token request failed (HTTP ${response.status})`);
    const token = parseObject(`${realm.host}: token response`, response.body);
    const value = token.token ?? token.access_token;
    if (typeof value !== "string" || !value) throw new BronzeError(`${realm.host}: token response holds no token`);
    return `Bearer ${value}`;
  }

  /** A failure the user can act on, from an unexpected status. */
  fail(what: string, response: HttpResponse): RegistryError {
    const detail = response.body.toString().slice(0, 300).trim();
    const hint = response.status === 404 ? " (unknown repository, tag or blob)" : response.status === 403 ? " (access denied for these credentials)" : "";
    return new RegistryError(`${this.registry}: ${what}: HTTP ${response.status}${hint}${detail ? `: ${detail}` : ""}`, { status: response.status });
  }
}

export const scopeOf = (ref: Reference, actions: string) => `repository:${ref.repository}:${actions}`;

export async function hasBlob(client: RegistryClient, ref: Reference, digest: string): Promise<boolean> {
  const response = await client.request("HEAD", `/v2/${ref.repository}/blobs/${digest}`, scopeOf(ref, "pull"));
  if (response.status === 200) return true;
  if (response.status === 404) return false;
  throw client.fail(`HEAD blob ${digest}`, response);
}

/** Stores a manifest under a tag or its digest; the answer's headers say whether the registry tracks its subject. */
export async function putManifest(client: RegistryClient, ref: Reference, reference: string, mediaType: string, data: Buffer): Promise<HttpResponse> {
  const response = await client.request("PUT", `/v2/${ref.repository}/manifests/${reference}`, scopeOf(ref, "pull,push"), { "Content-Type": mediaType }, data);
  if (response.status !== 201) throw client.fail(`PUT manifest ${reference}`, response);
  return response;
}

/** Whether the registry holds a manifest under `reference` (a tag or digest), and the digest it names when it says. */
export async function headManifest(client: RegistryClient, ref: Reference, reference: string): Promise<{ present: boolean; digest?: string }> {
  const response = await client.request("HEAD", `/v2/${ref.repository}/manifests/${reference}`, scopeOf(ref, "pull"), { Accept: MANIFEST_ACCEPT });
  const digest = response.headers["docker-content-digest"];
  return { present: response.status === 200, ...(response.status === 200 && typeof digest === "string" ? { digest } : {}) };
}

export async function hasManifest(client: RegistryClient, ref: Reference, reference: string): Promise<boolean> {
  return (await headManifest(client, ref, reference)).present;
}

const requestManifest = (client: RegistryClient, ref: Reference, reference: string) =>
  client.request("GET", `/v2/${ref.repository}/manifests/${reference}`, scopeOf(ref, "pull"), { Accept: MANIFEST_ACCEPT });

/** Fetches a manifest or index; when asked by digest, the bytes must hash to it. */
export async function getManifest(client: RegistryClient, ref: Reference, reference: string): Promise<{ mediaType: string; data: Buffer; digest: string }> {
  return checkedManifest(client, reference, await requestManifest(client, ref, reference));
}

/** As getManifest, in one request: undefined when the registry holds nothing under `reference`. */
export async function findManifest(client: RegistryClient, ref: Reference, reference: string): Promise<{ mediaType: string; data: Buffer; digest: string } | undefined> {
  const response = await requestManifest(client, ref, reference);
  return response.status === 404 ? undefined : checkedManifest(client, reference, response);
}

function checkedManifest(client: RegistryClient, reference: string, response: HttpResponse): { mediaType: string; data: Buffer; digest: string } {
  if (response.status !== 200) throw client.fail(`GET manifest ${reference}`, response);
  const digest = digestOf(response.body);
  if (reference.startsWith("sha256:") && digest !== reference) throw new BronzeError(`${client.registry}: manifest ${reference} arrived with digest ${digest}: corrupted or tampered`);
  const mediaType = String(response.headers["content-type"] ?? "").split(";")[0] ?? "";
  return { mediaType, data: response.body, digest };
}

export async function getBlob(client: RegistryClient, ref: Reference, digest: string, size: number): Promise<Buffer> {
  const response = await client.request("GET", `/v2/${ref.repository}/blobs/${digest}`, scopeOf(ref, "pull"));
  if (response.status === 307 || response.status === 302) {
    const redirected = await client.request("GET", new URL(String(response.headers.location), client.url("/")), scopeOf(ref, "pull"));
    return checkBlob(client, redirected, digest, size);
  }
  return checkBlob(client, response, digest, size);
}

function checkBlob(client: RegistryClient, response: HttpResponse, digest: string, size: number): Buffer {
  if (response.status !== 200) throw client.fail(`GET blob ${digest}`, response);
  if (digestOf(response.body) !== digest || response.body.length !== size) throw new BronzeError(`${client.registry}: blob ${digest} arrived with other content: corrupted or tampered`);
  return response.body;
}
