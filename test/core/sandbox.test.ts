import assert from "node:assert/strict";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { overlayUpper, runSandboxed } from "../../src/core/sandbox.ts";
import { tempDir } from "../helpers/tmp.ts";

test("an overlay shows a read-only tree writable; the writes land in its changes, the tree is untouched, the script has no capability", async () => {
  const dir = await tempDir();
  const lower = join(dir, "lower");
  const changes = join(dir, "changes");
  await mkdir(join(lower, "linux"), { recursive: true });
  await writeFile(join(lower, "linux", "kept"), "kept\n");
  await writeFile(join(lower, "linux", "changed"), "before\n");
  const before = await stat(join(lower, "linux", "changed"));
  const script = [
    "echo after > changed",
    "echo new > made",
    "rm kept",
    "grep -q '^CapEff:[[:space:]]*0*$' /proc/self/status",
    "grep -q '^CapBnd:[[:space:]]*0*$' /proc/self/status",
    "! mount -t tmpfs none /tmp 2>/dev/null",
    "cat changed made > /out/seen",
  ].join("\n");
  const out = join(dir, "out");
  await mkdir(out);
  const mounts = [{ host: out, at: "/out", writable: true }];
  await runSandboxed(script, { cwd: "/build/linux", env: {}, logFile: join(dir, "log"), mounts, overlays: [{ lower, changes, at: "/build" }] });
  assert.equal(await readFile(join(out, "seen"), "utf8"), "after\nnew\n");
  assert.equal(await readFile(join(lower, "linux", "changed"), "utf8"), "before\n");
  assert.equal((await stat(join(lower, "linux", "changed"))).mtimeMs, before.mtimeMs);
  assert.equal(await readFile(join(lower, "linux", "kept"), "utf8"), "kept\n");
  const upper = join(overlayUpper(changes), "linux");
  assert.deepEqual((await readdir(upper)).sort(), ["changed", "kept", "made"], "the changes: two files written, one removed (a whiteout)");
  assert.equal(await readFile(join(upper, "made"), "utf8"), "new\n");
  assert.ok((await stat(join(upper, "kept"))).isCharacterDevice(), "a removal is a whiteout in the changes");
});

test("a sandbox has no network and sees none of the host's files but the toolchain and its mounts", async () => {
  const dir = await tempDir();
  const script = ["test -z \"$(ls /root 2>/dev/null)\"", "test \"$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ')\" = lo", "! test -e /work"].join("\n");
  await runSandboxed(script, { cwd: "/", env: {}, logFile: join(dir, "log"), mounts: [] });
});
