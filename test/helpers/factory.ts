import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { request } from "node:http";
import { join } from "node:path";
import { after } from "node:test";
import { execa, type ResultPromise } from "execa";
import { PROJECT_ROOT } from "./tmp.ts";

/** The release the factories of the tests serve: 0.1.1, so that their installers upgrade a disk of the minimal image (0.1.0). */
export const RELEASE = "0.1.1";

export interface Running {
  address: string;
  log: () => string;
  /** SIGTERM, then how it ended */
  stop: () => Promise<{ exitCode?: number; signal?: string }>;
}

const running: ResultPromise[] = [];
after(() => {
  for (const child of running) child.kill("SIGTERM");
});

/** `bronze factory serve` on a free port, signing with `signKey`; resolves once it says where it listens. */
export async function startFactory(registry: string, signKey: string, extra: readonly string[] = []): Promise<Running> {
  const child = execa(join(PROJECT_ROOT, "bin", "bronze"), ["factory", "serve", "--listen", "127.0.0.1:0", "--registry", `${registry}/factory`, "--sign-key", signKey, "--plain-http", ...extra], {
    cwd: PROJECT_ROOT,
    env: { CI: "true", BRONZE_VERSION: RELEASE },
    reject: false,
    buffer: false,
  });
  running.push(child);
  let err = "";
  child.stderr?.on("data", (c: Buffer) => (err += c.toString()));
  const address = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      const found = /listening on http:\/\/([0-9.:]+)/.exec(out)?.[1];
      if (found) resolve(found);
    });
    void child.then(() => reject(new Error(`bronze factory serve ended:\n${out}${err}`)));
  });
  const stop = async () => {
    child.kill("SIGTERM");
    const ended = await child;
    return { exitCode: ended.exitCode, signal: ended.signal };
  };
  return { address, log: () => err, stop };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTP exchange with the path sent exactly as written (no client-side normalization). */
export function http(address: string, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), method, path, headers: { ...headers, ...(body !== undefined ? { "Content-Length": String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

export async function createSchematic(address: string, text: string, headers: Record<string, string> = {}): Promise<string> {
  const answer = await http(address, "POST", "/schematics", text, headers);
  assert.equal(answer.status, 201, answer.body.toString());
  return (JSON.parse(answer.body.toString()) as { id: string }).id;
}

/** GETs `path` until it is there, every answer before that a 202 (or, on the registry front, 503) with Retry-After. */
export async function whenBuilt(address: string, path: string, waiting = 202): Promise<Answer> {
  for (let tries = 0; tries < 600; tries++) {
    const answer = await http(address, "GET", path);
    if (answer.status === 200) return answer;
    assert.equal(answer.status, waiting, `${path}: ${answer.body.toString()}`);
    assert.ok(Number(answer.headers["retry-after"]) > 0, "the client is told when to ask again");
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${path} was not built in 5 minutes`);
}

export const buildsOf = (log: string, id: string) => log.split("\n").filter((l) => l.includes(`bronze factory: building ${id}`)).length;
export const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

