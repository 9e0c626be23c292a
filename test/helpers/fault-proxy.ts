import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { seededRandom } from "./random.ts";

/** What a flaky registry (or the network before it) does to a request instead of answering it. */
export const FAULT_KINDS = ["502", "503", "429", "reset", "slow", "answer lost"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultProxy {
  /** host:port of the proxy, on the loopback interface */
  address: string;
  requests: number;
  faults: Record<FaultKind, number>;
  stop: () => void;
}

function forward(target: { host: string; port: number }, req: IncomingMessage, onAnswer: (upstream: IncomingMessage) => void, onError: () => void): void {
  const upstream = request({ ...target, method: req.method, path: req.url, headers: req.headers }, onAnswer);
  upstream.on("error", onError);
  req.pipe(upstream);
}

/**
 * An HTTP proxy in front of a registry that turns `rate` of the requests into a fault: a 502 or 503, a
 * 429, a reset connection, an answer 1.5 s late, or the request done by the registry and its answer
 * replaced by a 502 (the nastiest: a finished upload the client was told failed); only faults of `kinds` if
 * given (a slow registry: ["slow"] at rate 1). No test hooks: benchmarks use it too.
 */
export async function startFaultProxy(registry: string, rate: number, seed: number, kinds: readonly FaultKind[] = FAULT_KINDS): Promise<FaultProxy> {
  const [host, port] = registry.split(":") as [string, string];
  const target = { host, port: Number(port) };
  const next = seededRandom(seed);
  const proxy: FaultProxy = { address: "", requests: 0, faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>, stop: () => undefined };
  const pass = (req: IncomingMessage, res: ServerResponse) =>
    forward(target, req, (upstream) => {
      res.writeHead(upstream.statusCode ?? 502, upstream.headers);
      upstream.pipe(res);
    }, () => res.destroy());
  const server = createServer((req, res) => {
    proxy.requests++;
    if (next() >= rate) return pass(req, res);
    const kind = kinds[Math.floor(next() * kinds.length)]!;
    proxy.faults[kind]++;
    if (kind === "reset") return req.socket.destroy();
    if (kind === "slow") return void setTimeout(() => pass(req, res), 1500);
    if (kind === "answer lost") {
      return forward(target, req, (upstream) => {
        upstream.resume();
        upstream.on("end", () => res.writeHead(502).end("bad gateway"));
      }, () => res.destroy());
    }
    req.resume();
    req.on("end", () => res.writeHead(Number(kind), kind === "429" ? { "Retry-After": "0" } : {}).end(kind));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.stop = () => {
    server.closeAllConnections();
    server.close();
  };
  return proxy;
}
