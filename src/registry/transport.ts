import type { IncomingHttpHeaders } from "node:http";
import { BronzeError } from "../core/errors.ts";

// node:http imported as an ES module builds its whole namespace, which loads Node's fetch implementation:
// about a fifth of every bronze command's start-up. Taken as the CommonJS module when a request is made, it does not.
const requestFor = (url: URL) => (url.protocol === "https:" ? process.getBuiltinModule("node:https") : process.getBuiltinModule("node:http")).request;

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface Credentials {
  username: string;
  password: string;
}

export interface TransportOptions {
  /** https unless plain HTTP was allowed (loopback, or asked for) */
  scheme: "https" | "http";
  /** extra CA certificates (PEM) to trust */
  ca?: Buffer;
  credentials?: Credentials;
  /** attempts on 5xx, 429 and connection resets */
  attempts: number;
  /** first backoff delay; doubled each retry */
  backoffMs: number;
  /** how long a connection may stay silent before it counts as dropped (default 30 s) */
  idleTimeoutMs?: number;
}

const IDLE_TIMEOUT_MS = 30_000;
/** no wait between attempts longer than this, however many were made */
const MAX_BACKOFF_MS = 5_000;
/**
 * A bronze factory answers 503 with this header while it builds what was asked for (an installer made on
 * first pull): that is waited for, as Retry-After says, up to BUILD_WAIT_MS, without using up the attempts
 * a fault may take.
 */
export const BUILDING_HEADER = "bronze-building";
const BUILD_WAIT_MS = 30 * 60_000;
const RETRYABLE_CODES = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNABORTED", "EAI_AGAIN"]);

/** A registry exchange that failed: the system's error code when the connection failed, the HTTP status when an answer said no. */
export class RegistryError extends BronzeError {
  readonly code?: string;
  readonly status?: number;
  constructor(message: string, cause: { code?: string; status?: number } = {}) {
    super(message);
    this.name = "RegistryError";
    this.code = cause.code;
    this.status = cause.status;
  }

  /** the connection dropped or timed out: the same request may succeed when sent again */
  get dropped(): boolean {
    return this.code !== undefined && RETRYABLE_CODES.has(this.code);
  }
}

/** One HTTP exchange, the whole body in memory (registry objects here are small enough). */
function exchange(options: TransportOptions, method: string, url: URL, headers: Record<string, string>, body?: Buffer): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const send = requestFor(url);
    const req = send(
      url,
      { method, headers: { ...headers, ...(body ? { "Content-Length": String(body.length) } : {}) }, ...(options.ca ? { ca: options.ca } : {}), timeout: options.idleTimeoutMs ?? IDLE_TIMEOUT_MS },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })));
    req.on("error", reject);
    req.end(body);
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The wait before try `n + 1` (n ≥ 1): `baseMs` doubled each time, never more than MAX_BACKOFF_MS. */
export const backoffMs = (baseMs: number, n: number): number => Math.min(baseMs * 2 ** (n - 1), MAX_BACKOFF_MS);

/** How long an answer asks to be left before the next try (Retry-After, at most 30 s); undefined when it does not say. */
function retryAfterMs(response: HttpResponse): number | undefined {
  const seconds = Number(response.headers["retry-after"]);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds * 1000, 30_000) : undefined;
}

/**
 * One exchange, sent again for as long as a bronze factory answers that it is building what was asked for
 * (up to BUILD_WAIT_MS, as its Retry-After says): that wait is not a fault, and uses up no attempt.
 */
async function exchangeOnceBuilt(options: TransportOptions, method: string, url: URL, headers: Record<string, string>, body: Buffer | undefined, onRetry?: (why: string) => void): Promise<HttpResponse> {
  for (let waited = 0; ; ) {
    const response = await exchange(options, method, url, headers, body);
    if (response.status !== 503 || response.headers[BUILDING_HEADER] === undefined || waited >= BUILD_WAIT_MS) return response;
    const wait = retryAfterMs(response) ?? options.backoffMs;
    onRetry?.(`${method} ${url.pathname}: being built by the factory; asking again in ${wait} ms`);
    waited += wait;
    await sleep(wait);
  }
}

/** Sends with retries: 5xx and 429 (honouring Retry-After) and dropped connections, with exponential backoff. */
export async function sendWithRetries(
  options: TransportOptions,
  method: string,
  url: URL,
  headers: Record<string, string>,
  body?: Buffer,
  onRetry?: (why: string) => void,
): Promise<HttpResponse> {
  for (let attempt = 1; ; attempt++) {
    let why: string;
    let wait = backoffMs(options.backoffMs, attempt);
    try {
      const response = await exchangeOnceBuilt(options, method, url, headers, body, onRetry);
      if (response.status < 500 && response.status !== 429) return response;
      why = `HTTP ${response.status}`;
      wait = retryAfterMs(response) ?? wait;
      if (attempt >= options.attempts) return response;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "";
      if (code === "ECONNREFUSED") throw new BronzeError(`cannot connect to ${url.host}: connection refused (is the registry running, and is the address right?)`);
      if (code === "ENOTFOUND") throw new BronzeError(`cannot resolve ${url.hostname}: check the registry host name`);
      if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
        throw new BronzeError(`TLS: ${url.host} presented a certificate that is not trusted (${code}); give its CA with --ca-file`);
      }
      if (!RETRYABLE_CODES.has(code) || attempt >= options.attempts) throw new RegistryError(`${method} ${url.host}${url.pathname}: ${(e as Error).message}`, { code });
      why = code;
    }
    onRetry?.(`${method} ${url.pathname}: ${why}; retry ${attempt} of ${options.attempts - 1} in ${wait} ms`);
    await sleep(wait);
  }
}
