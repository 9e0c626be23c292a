import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { indexTar, parseTarHeader, readSpan } from "../../src/oci/tar-index.ts";
import { writeTar } from "../../src/oci/tar.ts";
import { tempDir } from "../helpers/tmp.ts";

const dir = await tempDir();
const longName = `${"deep/".repeat(40)}file.txt`;

/** The files of a tree made on disk, archived by GNU tar in `format`. */
async function gnuTar(format: "gnu" | "pax" | "ustar", name: string): Promise<string> {
  const tree = join(dir, `tree-${format}-${name.length}`);
  await mkdir(join(tree, name, ".."), { recursive: true });
  await writeFile(join(tree, name), `content of ${name}\n`);
  await writeFile(join(tree, "index.json"), "{}");
  const archive = `${tree}.tar`;
  await execa("tar", [`--format=${format}`, "-cf", archive, "-C", tree, "index.json", name]);
  return archive;
}

test("each file of our own ustar writer is found where its bytes are", async () => {
  const big = Buffer.alloc(70_000, 7);
  const archive = join(dir, "ours.tar");
  await writeFile(
    archive,
    writeTar(
      [
        { path: "blobs", type: "dir", mode: 0o755 },
        { path: "blobs/sha256/aa", type: "file", mode: 0o644, data: big },
        { path: "empty", type: "file", mode: 0o644, data: Buffer.alloc(0) },
        { path: "link", type: "symlink", target: "empty" },
        { path: "index.json", type: "file", mode: 0o644, data: Buffer.from("{}") },
      ],
      0,
    ),
  );
  const files = await indexTar(archive);
  assert.deepEqual([...files.keys()].sort(), ["blobs/sha256/aa", "empty", "index.json"]);
  assert.deepEqual(await readSpan(archive, files.get("blobs/sha256/aa")!), big);
  assert.equal((await readSpan(archive, files.get("index.json")!)).toString(), "{}");
  assert.equal(files.get("empty")?.size, 0);
});

for (const format of ["gnu", "pax"] as const) {
  test(`a long path in GNU tar's ${format} format (${format === "gnu" ? "a long-name entry" : "a PAX path record"}) is the file's path`, async () => {
    const archive = await gnuTar(format, longName);
    const files = await indexTar(archive);
    assert.deepEqual([...files.keys()].sort(), [longName, "index.json"].sort());
    assert.equal((await readSpan(archive, files.get(longName)!)).toString(), `content of ${longName}\n`);
  });
}

test("a ustar path split into prefix and name is joined again", async () => {
  const name = `${"p".repeat(120)}/${"n".repeat(60)}`;
  const archive = await gnuTar("ustar", name);
  const files = await indexTar(archive);
  assert.equal((await readSpan(archive, files.get(name)!)).toString(), `content of ${name}\n`);
});

test("a damaged header or an archive cut inside a file is refused, saying which", async () => {
  const archive = await gnuTar("ustar", "a.txt");
  const bytes = await readFile(archive);
  const flipped = Buffer.from(bytes);
  flipped[3] = (flipped[3] ?? 0) ^ 1;
  await writeFile(join(dir, "flipped.tar"), flipped);
  await assert.rejects(indexTar(join(dir, "flipped.tar")), /header checksum mismatch/);
  // the second header (a.txt) is at 1024; its data block follows
  await writeFile(join(dir, "cut.tar"), bytes.subarray(0, 1024 + 512 + 10));
  await assert.rejects(indexTar(join(dir, "cut.tar")), /'a\.txt' runs past the archive's end/);
  assert.equal(parseTarHeader(Buffer.alloc(512)), undefined);
  assert.throws(() => parseTarHeader(Buffer.alloc(100)), /truncated header/);
});
