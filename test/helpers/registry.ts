import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { after } from "node:test";
import { execa } from "execa";
import { tempDir } from "./tmp.ts";

export interface LocalRegistry {
  /** host:port on the loopback interface */
  address: string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** Starts Debian's docker-registry (plain HTTP) on a free loopback port; stopped when the test file ends. */
export async function startRegistry(): Promise<LocalRegistry> {
  const dir = await tempDir("registry-");
  const port = await freePort();
  await mkdir(join(dir, "data"));
  const config = join(dir, "config.yml");
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, "data")}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const registry = execa("docker-registry", ["serve", config], { reject: false, all: true });
  let exited = false;
  void registry.then(() => (exited = true));
  after(() => {
    registry.kill("SIGTERM");
  });
  const address = `127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const answer = await fetch(`http://${address}/v2/`).catch(() => undefined);
    if (answer?.status === 200) return { address };
    if (exited) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  registry.kill("SIGKILL");
  throw new Error(`docker-registry did not answer on ${address}: ${String((await registry).all)}`);
}
