import assert from "node:assert/strict";
import { test } from "node:test";
import { flattenLayers } from "../../src/oci/flatten.ts";
import type { ReadEntry } from "../../src/oci/tar-read.ts";

const file = (path: string, text = path, mode = 0o644): ReadEntry => ({ path, type: "file", mode, uid: 0, gid: 0, data: Buffer.from(text) });
const dir = (path: string, mode = 0o755): ReadEntry => ({ path, type: "dir", mode, uid: 0, gid: 0 });
const link = (path: string, target: string, type: "symlink" | "hardlink" = "symlink"): ReadEntry => ({ path, type, mode: 0o777, uid: 0, gid: 0, target });
const where = (i: number) => `image x: layer ${i}`;
const summary = (layers: ReadEntry[][]) => flattenLayers(layers, where).entries.map((e) => `${e.type} ${e.path}${e.data ? ` ${e.data.toString()}` : ""}${e.target ? ` -> ${e.target}` : ""}`);

test("layers apply in order: whiteouts delete a lower layer's entry and what is under it, an opaque directory keeps only its own layer's entries", () => {
  const lower = [dir("etc"), file("etc/a"), dir("opt"), dir("opt/d"), file("opt/d/x"), file("opt/d/y"), dir("var"), dir("var/cache"), file("var/cache/z")];
  const upper = [file("etc/.wh.a"), dir("opt/d"), file("opt/d/.wh..wh..opq"), file("opt/d/new"), file("var/.wh.cache"), file("etc/b")];
  assert.deepEqual(summary([lower, upper]), ["dir etc", "file etc/b etc/b", "dir opt", "dir opt/d", "file opt/d/new opt/d/new", "dir var"]);
});

test("an entry replaces what a lower layer had at its path (a directory and its entries too), a directory over a directory keeps them", () => {
  const lower = [dir("a"), file("a/inside"), file("b", "old"), link("c", "b"), dir("d", 0o700), file("d/kept")];
  const upper = [file("a", "now a file"), file("b", "new"), file("c", "no longer a link"), dir("d", 0o755)];
  assert.deepEqual(summary([lower, upper]), ["file a now a file", "file b new", "file c no longer a link", "dir d", "file d/kept d/kept"]);
  assert.equal(flattenLayers([lower, upper], where).entries.find((e) => e.path === "d")?.mode, 0o755);
});

test("hard links become copies of their file; device nodes, FIFOs and sockets are left out and named; paths are normalized", () => {
  const layer: ReadEntry[] = [dir("./bin/"), file("bin/tool", "code", 0o755), link("bin/alias", "bin/tool", "hardlink"), { path: "dev/null", type: "char", mode: 0o666, uid: 0, gid: 0 }, { path: "run/fifo", type: "fifo", mode: 0o600, uid: 0, gid: 0 }];
  const flat = flattenLayers([layer], where);
  assert.deepEqual(flat.entries.map((e) => [e.path, e.type, e.data?.toString(), e.mode]), [["bin", "dir", undefined, 0o755], ["bin/alias", "file", "code", 0o755], ["bin/tool", "file", "code", 0o755]]);
  assert.deepEqual(flat.dropped, ["dev/null", "run/fifo"]);
});

test("an entry that climbs out of the root, or a hard link to nothing, is refused naming the layer", () => {
  assert.throws(() => flattenLayers([[file("a")], [file("../../etc/passwd")]], where), /image x: layer 1: entry '\.\.\/\.\.\/etc\/passwd' climbs out of the image's root/);
  assert.throws(() => flattenLayers([[file("usr/../../x")]], where), /layer 0: entry 'usr\/\.\.\/\.\.\/x' climbs out/);
  assert.throws(() => flattenLayers([[link("a", "missing", "hardlink")]], where), /layer 0: hard link 'a' names 'missing', which is no file of the layers so far/);
});
