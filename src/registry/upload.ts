/**
 * Blob uploads that survive a flaky registry (or a proxy in front of it). A request of an upload session
 * (a chunk, the closing PUT) changes the session, so it is not sent again blindly: after a fault (5xx,
 * 429, a dropped connection) the session's state is asked for and the upload goes on from the offset the
 * registry confirms; when the session is gone, or the closing answer was lost, the blob is looked for and
 * a new session started. Every wait is bounded (the transport's idle timeout, a backoff that doubles).
 */
import { BronzeError } from "../core/errors.ts";
import { hasBlob, scopeOf, type RegistryClient } from "./client.ts";
import type { Reference } from "./reference.ts";
import { backoffMs, RegistryError, sleep, type HttpResponse } from "./transport.ts";

/** sessions one blob may take, and faults in a row (with no chunk taken between them) one session may survive */
const SESSIONS = 8;
const FAULTS_PER_SESSION = 6;
const BACKOFF_MS = 100;
const backoff = (fault: number) => backoffMs(BACKOFF_MS, fault + 1);

/** A registry answer that says "try again" (or no answer at all). */
function isFault(outcome: HttpResponse | RegistryError): boolean {
  if (outcome instanceof RegistryError) return outcome.dropped;
  return outcome.status >= 500 || outcome.status === 429;
}

/** The session's end: it cannot go on (gone, refused); the blob may still have arrived. */
class SessionLost extends Error {}

interface Session {
  client: RegistryClient;
  scope: string;
  location: URL;
  faults: number;
  why: string[];
}

/** One request of a session, not retried by the transport: the answer, or the dropped connection. */
async function send(session: Session, method: string, headers: Record<string, string>, body: Buffer): Promise<HttpResponse | RegistryError> {
  try {
    return await session.client.request(method, session.location, session.scope, headers, body, false);
  } catch (e) {
    if (e instanceof RegistryError && e.dropped) return e;
    throw e;
  }
}

/** Counts a fault against the session and waits; SessionLost once it has had its share. */
async function fault(session: Session, what: string, outcome: HttpResponse | RegistryError): Promise<void> {
  session.why.push(`${what}: ${outcome instanceof RegistryError ? outcome.code : `HTTP ${outcome.status}`}`);
  if (++session.faults > FAULTS_PER_SESSION) throw new SessionLost();
  await sleep(backoff(session.faults));
}

/** Where the registry says the session stands: the next offset to send, and the session's new location. */
async function resumeOffset(session: Session): Promise<number> {
  // a status query changes nothing: a fault in its answer is asked again, against the session's budget
  let status = await send(session, "GET", {}, Buffer.alloc(0));
  while (isFault(status)) {
    await fault(session, "status", status);
    status = await send(session, "GET", {}, Buffer.alloc(0));
  }
  if (status instanceof RegistryError || status.status !== 204) throw new SessionLost();
  session.location = new URL(String(status.headers.location ?? session.location), session.client.url("/"));
  // "0-N" holds N + 1 bytes; distribution also says "0-0" for none, and a chunk is never 1 byte
  const range = /^(?:bytes=)?0-(\d+)$/.exec(String(status.headers.range ?? ""));
  const last = range ? Number(range[1]) : 0;
  return last === 0 ? 0 : last + 1;
}

function nextLocation(session: Session, response: HttpResponse): void {
  session.location = new URL(String(response.headers.location ?? session.location), session.client.url("/"));
}

/** Sends `data` in chunks from wherever the session stands, then closes it; the bytes sent. */
async function uploadChunks(session: Session, data: Buffer, chunkSize: number, digest: string): Promise<number> {
  let offset = 0;
  let sent = 0;
  while (offset < data.length) {
    const chunk = data.subarray(offset, offset + chunkSize);
    const range = `${offset}-${offset + chunk.length - 1}`;
    const patch = await send(session, "PATCH", { "Content-Type": "application/octet-stream", "Content-Range": range }, chunk);
    if (!(patch instanceof RegistryError) && patch.status === 202) {
      nextLocation(session, patch);
      offset += chunk.length;
      sent += chunk.length;
      // a session that makes progress is healthy: its budget is for faults in a row
      session.faults = 0;
      continue;
    }
    // 416: the registry holds another offset than the one resumed from; 404: the session is gone
    if (!(patch instanceof RegistryError) && (patch.status === 416 || patch.status === 404)) throw new SessionLost();
    if (!isFault(patch)) throw session.client.fail(`upload chunk ${range} of ${digest}`, patch as HttpResponse);
    await fault(session, `chunk ${range}`, patch);
    offset = await resumeOffset(session);
  }
  await close(session, Buffer.alloc(0), digest);
  return sent;
}

/**
 * The closing PUT (with the whole blob for a monolithic upload). After a fault it is sent again only while
 * the registry still holds the session open (a status query says 204): one that took the blob before its
 * answer was lost has closed the session, and the caller finds the blob there.
 */
async function close(session: Session, body: Buffer, digest: string): Promise<void> {
  for (;;) {
    const url = new URL(session.location);
    url.searchParams.set("digest", digest);
    const put = await send({ ...session, location: url }, "PUT", { "Content-Type": "application/octet-stream" }, body);
    if (!(put instanceof RegistryError) && put.status === 201) return;
    if (!isFault(put)) {
      if (put instanceof RegistryError || put.status === 404) throw new SessionLost();
      throw session.client.fail(`finish upload of ${digest}`, put);
    }
    await fault(session, "finish", put);
    await resumeOffset(session);
  }
}

/**
 * Uploads a blob unless the registry has it (or can mount it from `mountFrom`); returns the bytes sent.
 * The content is loaded only when it has to be sent.
 */
export async function pushBlob(client: RegistryClient, ref: Reference, digest: string, load: () => Promise<Buffer>, options: { chunkSize: number; mountFrom?: string }): Promise<number> {
  if (await hasBlob(client, ref, digest)) return 0;
  const data = await load();
  const scope = scopeOf(ref, "pull,push");
  const why: string[] = [];
  for (let attempt = 0; attempt < SESSIONS; attempt++) {
    if (attempt > 0) {
      await sleep(backoff(attempt));
      if (await hasBlob(client, ref, digest)) return data.length;
    }
    const query = options.mountFrom ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(options.mountFrom)}` : "";
    const start = await client.request("POST", `/v2/${ref.repository}/blobs/uploads/${query}`, scope, { "Content-Length": "0" });
    if (start.status === 201) return 0; // mounted from the other repository
    if (isFault(start)) {
      why.push(`start: HTTP ${start.status}`);
      continue;
    }
    if (start.status !== 202) throw client.fail(`start upload of ${digest}`, start);
    const session: Session = { client, scope, location: new URL(String(start.headers.location), client.url("/")), faults: 0, why };
    try {
      if (data.length > options.chunkSize) return await uploadChunks(session, data, options.chunkSize, digest);
      await close(session, data, digest);
      return data.length;
    } catch (e) {
      if (!(e instanceof SessionLost)) throw e;
    }
  }
  throw new BronzeError(`${client.registry}: upload of ${digest} failed in ${SESSIONS} sessions (${why.slice(-6).join("; ")})`);
}
