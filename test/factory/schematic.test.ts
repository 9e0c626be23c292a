import assert from "node:assert/strict";
import { test } from "node:test";
import { sha256 } from "../../src/core/hash.ts";
import { parseSchematic, SCHEMATIC_MAX_BYTES, schematicBytes, schematicId } from "../../src/factory/schematic.ts";

const PIN = (n: number) => `sha256:${String(n).repeat(64)}`;
const offer = {
  platforms: ["minimal", "metal"],
  extensions: [{ name: "hello" }, { name: "confined" }, { name: "motd", digest: PIN(1) }, { name: "motd", digest: PIN(2) }],
  images: false,
  secureBoot: false,
};
const read = (text: string) => parseSchematic("schematic", text, offer);

test("the same schematic written in any order, style or with comments has one ID: the sha256 of the bytes stored", () => {
  const a = read("platform: minimal\nextensions: [hello, confined]\nkernelArgs: [quiet]\noutputs: [iso, installer, uki]\n");
  const b = read('# mine\nkernelArgs:\n  - quiet\noutputs: [uki, installer, iso]\nextensions:\n  - hello\n  - confined\narch: x86_64\nplatform: "minimal"\n');
  assert.equal(schematicId(a), schematicId(b));
  assert.equal(schematicId(a), sha256(schematicBytes(a)));
  // the stored bytes are a schematic too, with the same ID
  assert.equal(schematicId(read(schematicBytes(a).toString())), schematicId(a));
  assert.deepEqual(a.outputs, ["installer", "iso", "uki"]);
});

test("what changes the image changes the ID: extension order (layering), kernel arguments, platform, outputs", () => {
  const ids = new Set(
    [
      "platform: minimal\nextensions: [hello, confined]\n",
      "platform: minimal\nextensions: [confined, hello]\n",
      "platform: minimal\nextensions: [hello, confined]\nkernelArgs: [quiet]\n",
      "platform: metal\nextensions: [hello, confined]\n",
      "platform: minimal\nextensions: [hello, confined]\noutputs: [uki]\n",
    ].map((text) => schematicId(read(text))),
  );
  assert.equal(ids.size, 5);
});

test("bad schematics are refused naming the line and the fix", () => {
  const refused: [string, RegExp][] = [
    ["platform: minimal\nextensions: [nope]\n", /schematic:2: extension 'nope' is not in the catalog; it offers hello, confined, motd/],
    ["platform: windows\n", /schematic:1: platform 'windows' is not offered; use one of minimal, metal/],
    ["platform: minimal\nsecrets: 1\n", /schematic:2: unknown key 'secrets' in the file; allowed: platform, arch/],
    ["platform: minimal\narch: sparc\n", /schematic:2: arch 'sparc' is not offered/],
    ["platform: minimal\nkernelArgs: ['a b']\n", /schematic:2: 'a b' is not one kernel argument/],
    ["platform: minimal\noutputs: [iso]\n", /schematic:2: the iso image is made from the installer image: add 'installer' to outputs/],
    ["platform: minimal\noutputs: [floppy]\n", /schematic:2: unknown output 'floppy'/],
    ["platform: minimal\nextensions: [hello, hello]\n", /schematic:2: 'hello' is named twice/],
    ["platform: minimal\nsecureBoot: true\n", /schematic:2: this factory holds no Secure Boot key to sign with; ask for secureBoot: false/],
    ["platform: minimal\nsecureBoot: yes please\n", /schematic:2: secureBoot is true or false/],
    ["platform: [minimal\n", /schematic:\d+: not valid YAML/],
    ["- platform\n", /schematic:1: the file must be a mapping/],
    [`platform: minimal\nkernelArgs: [${Array.from({ length: 65 }, (_, i) => `a${i}`).join(", ")}]\n`, /schematic:2: at most 64 items/],
    [`platform: minimal\n# ${"x".repeat(SCHEMATIC_MAX_BYTES)}\n`, /schematic: a schematic is at most 16384 bytes/],
  ];
  for (const [text, message] of refused) assert.throws(() => read(text), message, text.slice(0, 60));
});

test("Secure Boot is part of what the schematic names: on is another image than off, and is taken only where the factory can sign", () => {
  const signing = { ...offer, secureBoot: true };
  const on = parseSchematic("schematic", "platform: minimal\nsecureBoot: true\n", signing);
  const off = parseSchematic("schematic", "platform: minimal\n", signing);
  assert.equal(off.secureBoot, false);
  assert.notEqual(schematicId(on), schematicId(off));
  assert.equal(schematicId(off), schematicId(parseSchematic("schematic", "platform: minimal\nsecureBoot: false\n", signing)));
});
