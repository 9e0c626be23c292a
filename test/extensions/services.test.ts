import assert from "node:assert/strict";
import { test } from "node:test";
import { InputError } from "../../src/core/errors.ts";
import { enforceExtensionPolicy } from "../../src/extensions/assemble.ts";
import { checkExtension, type ExtensionContent } from "../../src/extensions/policy.ts";
import type { KernelArtifact } from "../../src/kernel/build.ts";
import { makeSigningKey } from "../helpers/modsign.ts";
import { tempDir } from "../helpers/tmp.ts";
import { parseServiceDefinition, renderServiceFile } from "../../src/extensions/services.ts";
import type { ReadEntry } from "../../src/oci/tar-read.ts";

test("a service definition becomes the line format init reads, arguments in order", () => {
  const service = parseServiceDefinition("hello.yaml", "hello.yaml", 'name: hello\ncommand: /usr/local/bin/hello-service\nargs: ["--interval", 2, "a=b c"]\nrestart: on-failure\n');
  assert.deepEqual(service, { name: "hello", command: "/usr/local/bin/hello-service", args: ["--interval", "2", "a=b c"], restart: "on-failure" });
  assert.equal(renderServiceFile(service).toString(), "name=hello\ncommand=/usr/local/bin/hello-service\narg=--interval\narg=2\narg=a=b c\nrestart=on-failure\n");
  assert.equal(parseServiceDefinition("x.yaml", "x.yaml", "name: x\ncommand: /usr/local/bin/x\n").restart, "always");
});

test("bad service definitions name the file, the line and the fix", () => {
  const refused = (text: string, message: RegExp, file = "svc.yaml") =>
    assert.throws(() => parseServiceDefinition(`usr/lib/bronze/services/${file}`, file, text), (e: unknown) => e instanceof InputError && message.test(e.message));
  refused("name: svc\ncommand: /bin/x\nrestart: sometimes\n", /svc\.yaml:3.*restart 'sometimes' is not known; use always, on-failure, never/);
  refused("name: other\ncommand: /bin/x\n", /svc\.yaml:1.*named 'other' but its file is svc\.yaml/);
  refused("name: svc\ncommand: bin/x\n", /svc\.yaml:2.*must be an absolute, normalized path/);
  refused("name: svc\ncommand: /usr/../bin/x\n", /svc\.yaml:2.*absolute, normalized path/);
  refused("name: svc\ncommand: /bin/x\nuser: nobody\n", /svc\.yaml:3.*user/);
  refused(`name: svc\ncommand: /bin/x\nargs: [${Array.from({ length: 33 }, (_, i) => i).join(", ")}]\n`, /svc\.yaml:3.*at most 32 arguments/);
});

const entry = (path: string, data = "", mode = 0o644): ReadEntry => ({ path, type: "file", mode, uid: 0, gid: 0, data: Buffer.from(data) });
const content = (entries: ReadEntry[]): ExtensionContent => ({
  manifest: { name: "svc", version: "1.0.0", author: "t", description: "", compatibility: ">= 0.1.0" },
  entries,
  stray: [],
});

test("the content policy checks service definitions and that modules match the image's kernel release", () => {
  const rules = (entries: ReadEntry[], baseFiles = new Set<string>()) =>
    checkExtension(content(entries), { osVersion: "0.1.0", baseFiles, kernelRelease: "6.1.192-bronze" }).map((v) => [v.path, v.rule, v.detail]);
  const program = entry("usr/local/bin/svc", "#!", 0o755);
  // a definition whose program the extension or the base image has; modules-load.d is an allowed place
  assert.deepEqual(rules([program, entry("usr/lib/bronze/services/svc.yaml", "name: svc\ncommand: /usr/local/bin/svc\n"), entry("usr/lib/modules-load.d/svc.conf", "svc\n")]), []);
  assert.deepEqual(rules([entry("usr/lib/bronze/services/svc.yaml", "name: svc\ncommand: /usr/bin/base-tool\n")], new Set(["usr/bin/base-tool"])), []);
  assert.deepEqual(rules([entry("usr/lib/bronze/services/svc.yaml", "name: svc\ncommand: /usr/local/bin/absent\n")]), [
    ["usr/lib/bronze/services/svc.yaml", "service-definition", "command /usr/local/bin/absent is neither an executable file of the extension nor a file of the base image"],
  ]);
  // without a base (bronze extension build), a command outside the extension waits for the image build's check
  assert.deepEqual(checkExtension(content([entry("usr/lib/bronze/services/svc.yaml", "name: svc\ncommand: /usr/sbin/base-tool\n")]), { osVersion: "0.1.0" }), []);
  assert.deepEqual(rules([entry("usr/local/bin/svc", "#!", 0o644), entry("usr/lib/bronze/services/svc.yaml", "name: svc\ncommand: /usr/local/bin/svc\n")]).map((v) => v[1]), ["service-definition"], "not executable");
  assert.deepEqual(rules([program, entry("usr/lib/bronze/services/svc.service", "name=svc\n")]).map((v) => v[1]), ["service-definition"]);
  const [bad] = rules([program, entry("usr/lib/bronze/services/svc.yaml", "name: svc\ncommand: /usr/local/bin/svc\nrestart: sometimes\n")]);
  assert.equal(bad?.[1], "service-definition");
  assert.match(String(bad?.[2]), /svc\.yaml:3.*restart 'sometimes'/);
  assert.deepEqual(rules([entry("usr/lib/modules/6.1.0-other/extra/x.ko")]), [["usr/lib/modules/6.1.0-other/extra/x.ko", "module-release", "a kernel module outside usr/lib/modules/6.1.192-bronze/, the release of this image's kernel"]]);
  assert.deepEqual(rules([entry("usr/lib/modules/6.1.192-bronze/extra/x.ko")]), []);
});

test("extensions are checked together: a second extension of the same name, and a file an earlier extension has, are refused with every other violation", async () => {
  const dir = await tempDir();
  const ours = await makeSigningKey(dir, "ours");
  const kernel = { signingCert: ours.der, release: "6.1.192-bronze" } as KernelArtifact;
  const ext = (name: string, entries: ReadEntry[]) => ({ content: { ...content(entries), manifest: { ...content([]).manifest, name } }, origin: { kind: "build" as const, dir } });
  const first = ext("one", [entry("usr/share/one/a.txt")]);
  const again = ext("one", [entry("usr/share/one/b.txt")]);
  const overlap = ext("two", [entry("usr/share/one/a.txt"), entry("usr/share/base.txt")]);
  await enforceExtensionPolicy([first], { osVersion: "0.1.0", baseFiles: new Set(), kernel });
  await assert.rejects(
    enforceExtensionPolicy([first, again, overlap], { osVersion: "0.1.0", baseFiles: new Set(["usr/share/base.txt"]), kernel }),
    (e: unknown) => {
      assert.ok(e instanceof InputError);
      assert.match(e.message, /^3 violation\(s\) of the extension content policy:/);
      assert.match(e.message, /extension 'one': manifest\.yaml: overwrite: another extension of this image has the same name/);
      assert.match(e.message, /extension 'two': usr\/share\/one\/a\.txt: overwrite: replaces a file of extension 'one'/);
      assert.match(e.message, /extension 'two': usr\/share\/base\.txt: overwrite: replaces a file of the base image/);
      return true;
    },
  );
});
