import assert from "node:assert/strict";
import { test } from "node:test";
import { relativeLinkTarget, resolveInRoot, treeLookup } from "../../src/oci/resolve.ts";

const tree = treeLookup(
  Object.entries({
    bin: { type: "symlink", target: "usr/bin" },
    "usr/bin/sh": { type: "symlink", target: "/bin/busybox" },
    "usr/bin/busybox": { type: "file" },
    "usr/lib/up": { type: "symlink", target: "../../../../usr/bin" },
    loop: { type: "symlink", target: "loop" },
    "etc/file": { type: "file" },
  }),
);

test("a path is resolved inside the root: links followed, absolute ones from the root, '..' stopping at the root", () => {
  assert.equal(resolveInRoot("/bin/sh", tree), "usr/bin/busybox");
  assert.equal(resolveInRoot("usr/lib/up/busybox", tree), "usr/bin/busybox");
  assert.equal(resolveInRoot("/../../etc/file", tree), "etc/file");
  assert.equal(resolveInRoot("usr", tree), "usr", "a parent of listed entries is a directory");
  assert.equal(resolveInRoot("/missing", tree), undefined);
  assert.equal(resolveInRoot("/loop", tree), undefined, "a loop");
  assert.equal(resolveInRoot("/etc/file/x", tree), undefined, "a file is no directory");
});

test("a link's target made relative reaches the same place from the link's directory", () => {
  assert.equal(relativeLinkTarget("usr/bin/sh", "/bin/busybox"), "../../bin/busybox");
  assert.equal(relativeLinkTarget("bin", "/usr/bin"), "usr/bin");
  assert.equal(relativeLinkTarget("usr/lib/up", "../../../../usr/bin"), "../bin");
  assert.equal(relativeLinkTarget("a/b", "/"), "..");
  assert.equal(relativeLinkTarget("a/b", "c"), "c");
});
