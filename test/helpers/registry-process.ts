import { mkdir, readFile, writeFile } from "node:fs/promises";
import { get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";
import { createServer } from "node:net";
import { join } from "node:path";
import { execa } from "execa";

/** Holds no test hooks, so that benchmarks can use it too; tests use startRegistry (test/helpers/registry.ts). */
export interface LocalRegistry {
  /** host:port on the loopback interface */
  address: string;
  /** with TLS: the test CA that signed the registry's certificate */
  caFile?: string;
  /** the registry's filesystem storage, for tests that alter what it serves */
  storage: string;
}

export interface RegistryOptions {
  /** htpasswd users (bcrypt), and TLS with a CA made for the test */
  users?: Record<string, string>;
}

/** A CA and a server certificate for 127.0.0.1 signed by it. */
async function makeTls(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const f = { ca: join(dir, "ca.pem"), caKey: join(dir, "ca.key"), cert: join(dir, "server.pem"), key: join(dir, "server.key"), csr: join(dir, "server.csr"), ext: join(dir, "server.ext") };
  await execa("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=bronze test CA", "-keyout", f.caKey, "-out", f.ca]);
  await execa("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", f.key, "-out", f.csr]);
  await writeFile(f.ext, "subjectAltName=IP:127.0.0.1\n");
  await execa("openssl", ["x509", "-req", "-in", f.csr, "-CA", f.ca, "-CAkey", f.caKey, "-CAcreateserial", "-days", "1", "-extfile", f.ext, "-out", f.cert]);
  return { ca: f.ca, cert: f.cert, key: f.key };
}

function probe(url: string, ca?: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = (url.startsWith("https") ? httpsGet : httpGet)(url, ca ? { ca } : {}, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
  });
}

/** A loopback TCP port nothing listens on now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** How often a registry is started on another port when the one chosen was taken before it could bind it. */
const PORT_TRIES = 3;

/** Starts Debian's docker-registry on a free loopback port, keeping its files in `dir`; plain HTTP unless users are given. */
export async function launchRegistry(dir: string, options: RegistryOptions = {}): Promise<LocalRegistry & { stop: () => void }> {
  await mkdir(join(dir, "data"), { recursive: true });
  let extra = "";
  let tls: { ca: string; cert: string; key: string } | undefined;
  if (options.users) {
    tls = await makeTls(dir);
    const lines = await Promise.all(Object.entries(options.users).map(async ([user, password]) => (await execa("htpasswd", ["-Bbn", user, password])).stdout.trim()));
    await writeFile(join(dir, "htpasswd"), `${lines.join("\n")}\n`);
    extra = `  tls:\n    certificate: ${tls.cert}\n    key: ${tls.key}\nauth:\n  htpasswd:\n    realm: bronze-test\n    path: ${join(dir, "htpasswd")}\n`;
  }
  const config = join(dir, "config.yml");
  for (let attempt = 1; ; attempt++) {
    // the port is free when chosen; another program of a busy machine may take it before the registry binds it
    const port = await freePort();
    await writeFile(
      config,
      `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, "data")}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${extra}`,
    );
    const registry = execa("docker-registry", ["serve", config], { reject: false, all: true });
    let exited = false;
    void registry.then(() => (exited = true));
    const address = `127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !exited) {
      const status = await probe(`${tls ? "https" : "http"}://${address}/v2/`, tls ? await readFile(tls.ca) : undefined);
      // 401 is an answer too: the registry is up and asks for credentials; an answer counts only while it runs
      if ((status === 200 || status === 401) && !exited) {
        return { address, stop: () => void registry.kill("SIGTERM"), storage: join(dir, "data"), ...(tls ? { caFile: tls.ca } : {}) };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    registry.kill("SIGKILL");
    const output = String((await registry).all);
    if (exited && /address already in use/.test(output) && attempt < PORT_TRIES) continue;
    throw new Error(`docker-registry did not answer on ${address}: ${output}`);
  }
}
