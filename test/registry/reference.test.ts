import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { InputError } from "../../src/core/errors.ts";
import { dockerCredentials, parseChallenge } from "../../src/registry/auth.ts";
import { isLoopback, parseReference } from "../../src/registry/reference.ts";
import { RegistryError } from "../../src/registry/transport.ts";
import { tempDir } from "../helpers/tmp.ts";

test("references: host, port, nested repository, tag or digest; anything else is an input error that shows the form", () => {
  assert.deepEqual(parseReference("127.0.0.1:5000/bronze/installer:0.1.0"), { registry: "127.0.0.1:5000", repository: "bronze/installer", tag: "0.1.0" });
  const digest = `sha256:${"a".repeat(64)}`;
  assert.deepEqual(parseReference(`localhost/x@${digest}`), { registry: "localhost", repository: "x", digest });
  assert.deepEqual(parseReference("registry.example:443/team/os"), { registry: "registry.example:443", repository: "team/os" });
  for (const bad of ["installer:1", "h/UPPER:1", "h/x:bad tag", "h/x@sha256:short", "/x:1"]) {
    assert.throws(() => parseReference(bad), (e: unknown) => e instanceof InputError && /HOST\[:PORT\]\/REPOSITORY/.test(e.message), bad);
  }
  assert.equal(isLoopback("127.0.0.1:5000"), true);
  assert.equal(isLoopback("localhost"), true);
  assert.equal(isLoopback("[::1]:5000"), true);
  assert.equal(isLoopback("10.0.0.1:5000"), false);
});

test("WWW-Authenticate challenges: bearer with realm, service and scope; basic", () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), {
    scheme: "bearer",
    params: { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull,push" },
  });
  assert.deepEqual(parseChallenge('Basic realm="bronze-test"'), { scheme: "basic", params: { realm: "bronze-test" } });
});

test("credentials from docker's config.json: base64 auth or username/password, matched by host", async () => {
  const dir = await tempDir();
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "config.json"),
    JSON.stringify({ auths: { "127.0.0.1:5000": { auth: Buffer.from("release:s3:cret").toString("base64") }, "https://other.example/v1/": { username: "u", password: "p" } } }),
  );
  assert.deepEqual(await dockerCredentials("127.0.0.1:5000", dir), { username: "release", password: "s3:cret" });
  assert.deepEqual(await dockerCredentials("other.example", dir), { username: "u", password: "p" });
  assert.equal(await dockerCredentials("unknown.example", dir), undefined);
  await writeFile(join(dir, "config.json"), "{not json");
  await assert.rejects(dockerCredentials("x", dir), /config\.json: not valid JSON/);
});

test("registry errors carry what failed: a dropped connection may be sent again, an answer that said no may not", () => {
  for (const code of ["ECONNRESET", "EPIPE", "ETIMEDOUT"]) assert.equal(new RegistryError("x", { code }).dropped, true, code);
  for (const cause of [{ code: "ECONNREFUSED" }, { status: 500 }, { status: 404 }, {}]) assert.equal(new RegistryError("x", cause).dropped, false, JSON.stringify(cause));
  assert.equal(new RegistryError("x", { status: 404 }).status, 404);
});
