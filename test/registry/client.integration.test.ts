import assert from "node:assert/strict";
import { copyFile, readFile } from "node:fs/promises";
import { createServer as createHttpServer, request as httpRequest } from "node:http";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { execa } from "execa";
import { digestOf } from "../../src/oci/image.ts";
import { bronze } from "../helpers/cli.ts";
import { startRegistry } from "../helpers/registry.ts";
import { builtImage } from "../helpers/build.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";
import { REQUEST_ATTEMPTS } from "../../src/cli/oci.ts";

// bronze's own registry client against a real registry (Debian's
// docker-registry), checked by an independent client (skopeo, umoci).
const OUT = join(PROJECT_ROOT, "_out", "minimal");
// the minimal image: built when this file runs alone
before(() => builtImage("minimal"), { timeout: 30 * 60_000 });
const installer = async () => (JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as { installer: { tag: string; indexDigest: string } }).installer;

test("push: skopeo reads what bronze pushed; a re-push uploads 0 bytes; bronze pulls what skopeo pushed; umoci unpacks the pull", async () => {
  const { tag, indexDigest } = await installer();
  const registry = await startRegistry();
  const ref = `${registry.address}/bronze/installer:${tag}`;
  const first = await bronze(["push", join(OUT, "installer"), ref, "--plain-http", "--chunk-size", "1MiB"]);
  assert.equal(first.exitCode, 0, String(first.all));
  assert.match(String(first.stdout), new RegExp(`pushed .*@${indexDigest}: 2 blob\\(s\\) uploaded, 0 already there or mounted, \\d+ bytes sent`));
  const raw = (await execa("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`], { encoding: "buffer" })).stdout;
  assert.equal(digestOf(Buffer.from(raw)), indexDigest);
  await execa("skopeo", ["copy", "--all", "--src-tls-verify=false", `docker://${ref}`, `oci:${join(await tempDir(), "copy")}:${tag}`]);

  const again = await bronze(["push", join(OUT, "installer.oci.tar"), ref, "--plain-http"]);
  assert.equal(again.exitCode, 0, String(again.all));
  assert.match(String(again.stdout), /0 blob\(s\) uploaded, 2 already there or mounted, 0 bytes sent/);

  // an interrupted push leaves some blobs behind and no tag (the tag goes last): drop the index (and
  // with it the tag) and the config blob, and the re-run sends only that blob
  const manifest = JSON.parse((await execa("skopeo", ["inspect", "--raw", "--tls-verify=false", "--override-arch", "amd64", `docker://${ref}`])).stdout) as { manifests?: { digest: string }[] };
  const image = JSON.parse((await execa("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${registry.address}/bronze/installer@${manifest.manifests?.[0]?.digest ?? ""}`])).stdout) as { config: { digest: string; size: number } };
  for (const path of [`manifests/${indexDigest}`, `blobs/${image.config.digest}`]) {
    const deleted = await fetch(`http://${registry.address}/v2/bronze/installer/${path}`, { method: "DELETE" });
    assert.equal(deleted.status, 202, path);
  }
  const untagged = await execa("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`], { reject: false });
  assert.notEqual(untagged.exitCode, 0, "the tag went with the index");
  const resumed = await bronze(["push", join(OUT, "installer"), ref, "--plain-http"]);
  assert.equal(resumed.exitCode, 0, String(resumed.all));
  assert.match(String(resumed.stdout), new RegExp(`1 blob\\(s\\) uploaded, 1 already there or mounted, ${image.config.size} bytes sent`));

  const other = `${registry.address}/skopeo/installer:${tag}`;
  await execa("skopeo", ["copy", "--all", "--dest-tls-verify=false", `oci:${join(OUT, "installer")}:${tag}`, `docker://${other}`]);
  const work = await tempDir();
  const pulled = await bronze(["pull", other, join(work, "pulled"), "--plain-http"]);
  assert.equal(pulled.exitCode, 0, String(pulled.all));
  assert.match(String(pulled.stdout), new RegExp(`@${indexDigest} into`));
  await execa("umoci", ["unpack", "--image", `${join(work, "pulled")}:${tag}`, join(work, "bundle")]);
  assert.deepEqual(await readFile(join(work, "bundle/rootfs/usr/install/amd64/uki.efi")), await readFile(join(OUT, "uki.efi")));
  const asTar = await bronze(["pull", `${registry.address}/bronze/installer@${indexDigest}`, join(work, "pulled.tar"), "--plain-http"]);
  assert.equal(asTar.exitCode, 0, String(asTar.all));
  assert.match((await execa("skopeo", ["inspect", `oci-archive:${join(work, "pulled.tar")}`])).stdout, new RegExp(indexDigest));
});

test("TLS with a test CA and htpasswd: right credentials push, a wrong password, an untrusted CA, an unknown repository and a registry that is down each fail clearly", async () => {
  const { tag } = await installer();
  const registry = await startRegistry({ users: { release: "s3cret" } });
  const ca = registry.caFile ?? "";
  const ref = `${registry.address}/bronze/installer:${tag}`;
  const pushAs = (password: string, extra: string[] = ["--ca-file", ca]) =>
    execa(join(PROJECT_ROOT, "bin", "bronze"), ["push", join(OUT, "installer"), ref, "--username", "release", "--password-stdin", ...extra], { input: `${password}\n`, reject: false, all: true, env: { CI: "true" } });

  const ok = await pushAs("s3cret");
  assert.equal(ok.exitCode, 0, String(ok.all));
  // skopeo trusts the CAs of a directory holding *.crt files
  const certDir = await tempDir();
  await copyFile(ca, join(certDir, "ca.crt"));
  const inspected = await execa("skopeo", ["inspect", "--raw", "--creds", "release:s3cret", "--cert-dir", certDir, `docker://${ref}`], { reject: false });
  assert.equal(inspected.exitCode, 0, inspected.stderr);

  const wrong = await pushAs("guess");
  assert.equal(wrong.exitCode, 1);
  assert.match(String(wrong.all), /authentication failed \(401\) for user 'release'; check --username\/--password-stdin/);
  assert.doesNotMatch(String(wrong.all), /guess/, "the password is never printed");

  const untrusted = await pushAs("s3cret", []);
  assert.equal(untrusted.exitCode, 1);
  assert.match(String(untrusted.all), /certificate that is not trusted .*give its CA with --ca-file/);

  const unknown = await execa(join(PROJECT_ROOT, "bin", "bronze"), ["pull", `${registry.address}/no/such:thing`, join(await tempDir(), "x"), "--ca-file", ca, "--username", "release", "--password-stdin"], { input: "s3cret\n", reject: false, all: true });
  assert.equal(unknown.exitCode, 1);
  assert.match(String(unknown.all), /GET manifest thing: HTTP 404 \(unknown repository, tag or blob\)/);

  const down = await bronze(["push", join(OUT, "installer"), "127.0.0.1:1/bronze/x:1", "--plain-http"]);
  assert.equal(down.exitCode, 1);
  assert.match(String(down.all), /cannot connect to 127\.0\.0\.1:1: connection refused/);

  const plainElsewhere = await bronze(["push", join(OUT, "installer"), "registry.invalid/bronze/x:1", "--plain-http"]);
  assert.equal(plainElsewhere.exitCode, 2);
  assert.match(String(plainElsewhere.stderr), /add --insecure/);
});

/** A TCP proxy that cuts the first connection once it has carried `cutAfter` bytes upstream. */
async function cuttingProxy(target: string, cutAfter: number): Promise<{ address: string; cuts: () => number }> {
  const [host, port] = target.split(":");
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(port), host);
    sockets.add(client).add(upstream);
    let carried = 0;
    client.on("data", (chunk: Buffer) => {
      carried += chunk.length;
      if (cuts === 0 && carried > cutAfter) {
        cuts++;
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => client.write(chunk));
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const address = server.address();
  return { address: `127.0.0.1:${typeof address === "object" && address ? address.port : 0}`, cuts: () => cuts };
}

test("a connection cut mid-upload is retried and the push completes; the tag then points at blobs that are all there", async () => {
  const { tag, indexDigest } = await installer();
  const registry = await startRegistry();
  const proxy = await cuttingProxy(registry.address, 1_500_000);
  const result = await bronze(["push", join(OUT, "installer"), `${proxy.address}/bronze/installer:${tag}`, "--plain-http", "--chunk-size", "512KiB"]);
  assert.equal(result.exitCode, 0, String(result.all));
  assert.equal(proxy.cuts(), 1, "the proxy did cut a connection");
  const raw = (await execa("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${registry.address}/bronze/installer:${tag}`], { encoding: "buffer" })).stdout;
  assert.equal(digestOf(Buffer.from(raw)), indexDigest);
  const copy = await execa("skopeo", ["copy", "--all", "--src-tls-verify=false", `docker://${registry.address}/bronze/installer:${tag}`, `oci:${join(await tempDir(), "c")}:${tag}`], { reject: false });
  assert.equal(copy.exitCode, 0, copy.stderr);
});

/**
 * An HTTP front for the registry that, before forwarding, can answer 503 and
 * 429 to the first requests, and can demand bearer tokens from its own token endpoint.
 */
async function front(target: string, options: { failFirst?: number; bearer?: { username: string; password: string } }): Promise<{ address: string; seen: string[] }> {
  const seen: string[] = [];
  let failures = 0;
  const token = "t0ken-for-test";
  const server = createHttpServer((req, res) => {
    seen.push(`${req.method ?? ""} ${req.url ?? ""} ${req.headers.authorization?.split(" ")[0] ?? "anonymous"}`);
    const address = server.address();
    const self = `127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    if (options.bearer && req.url?.startsWith("/token")) {
      const expected = `Basic ${Buffer.from(`${options.bearer.username}:${options.bearer.password}`).toString("base64")}`;
      const scope = new URL(req.url, `http://${self}`).searchParams.get("scope");
      if (req.headers.authorization !== expected || !scope) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ token }));
      return;
    }
    if (options.bearer && req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { "WWW-Authenticate": `Bearer realm="http://${self}/token",service="bronze-test",scope="repository:bronze/installer:pull,push"` }).end();
      return;
    }
    if (failures < (options.failFirst ?? 0)) {
      failures++;
      res.writeHead(failures % 2 ? 503 : 429, failures % 2 ? {} : { "Retry-After": "0" }).end();
      return;
    }
    const [host, port] = target.split(":");
    const upstream = httpRequest({ host, port: Number(port), method: req.method, path: req.url, headers: { ...req.headers, authorization: "" } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  const address = server.address();
  return { address: `127.0.0.1:${typeof address === "object" && address ? address.port : 0}`, seen };
}

test("5xx and 429 answers are retried with backoff; a bearer-token challenge is answered with the credentials; blobs mount across repositories", async () => {
  const { tag, indexDigest } = await installer();
  const registry = await startRegistry();
  const flaky = await front(registry.address, { failFirst: 4 });
  const retried = await bronze(["push", join(OUT, "installer"), `${flaky.address}/bronze/installer:${tag}`, "--plain-http"]);
  assert.equal(retried.exitCode, 0, String(retried.all));
  const retries = REQUEST_ATTEMPTS - 1;
  assert.match(String(retried.stderr), new RegExp(`HTTP 503; retry 1 of ${retries} in \\d+ ms`));
  assert.match(String(retried.stderr), new RegExp(`HTTP 429; retry 2 of ${retries} in 0 ms`), "Retry-After is honoured");

  const guarded = await front(registry.address, { bearer: { username: "ci", password: "pw" } });
  const withToken = await execa(join(PROJECT_ROOT, "bin", "bronze"), ["push", join(OUT, "installer"), `${guarded.address}/bronze/installer:${tag}`, "--plain-http", "--username", "ci", "--password-stdin"], { input: "pw\n", reject: false, all: true, env: { CI: "true" } });
  assert.equal(withToken.exitCode, 0, String(withToken.all));
  assert.ok(guarded.seen.some((l) => l.startsWith("GET /token?") && l.endsWith("Basic")), "the token endpoint was asked with the credentials");
  assert.ok(guarded.seen.some((l) => l.endsWith("Bearer")), "requests carried the bearer token");
  const refused = await execa(join(PROJECT_ROOT, "bin", "bronze"), ["push", join(OUT, "installer"), `${guarded.address}/bronze/installer:${tag}`, "--plain-http", "--username", "ci", "--password-stdin"], { input: "wrong\n", reject: false, all: true });
  assert.equal(refused.exitCode, 1);
  assert.match(String(refused.all), /authentication failed/);

  const mounted = await bronze(["push", join(OUT, "installer"), `${registry.address}/team/installer:${tag}`, "--plain-http", "--mount-from", "bronze/installer"]);
  assert.equal(mounted.exitCode, 0, String(mounted.all));
  assert.match(String(mounted.stdout), new RegExp(`@${indexDigest}: 0 blob\\(s\\) uploaded, 2 already there or mounted, 0 bytes sent`));
});
