/**
 * A schematic: what a factory user asks for (a release profile to start from, extensions from the
 * catalog, kernel arguments, outputs), read from a small YAML document. Its ID is the sha256 of its
 * canonical JSON, which is also what the factory stores and serves: the same request anywhere, in
 * any key order or formatting, has the same ID, and anyone can check an ID against its bytes.
 */
import { ARCH_NAMES, DEFAULT_ARCH } from "../core/arch.ts";
import { InputError } from "../core/errors.ts";
import { canonicalJson, sha256 } from "../core/hash.ts";
import type { Output } from "../core/outputs.ts";
import { FieldReader, YamlFile } from "../core/yamlfile.ts";
import { NAME, readKernelArgs, readOutputs } from "../profile/profile.ts";

/** A schematic document is small: larger ones are refused before they are parsed. */
export const SCHEMATIC_MAX_BYTES = 16 * 1024;
const MAX_ITEMS = 64;
export const SCHEMATIC_ID = /^[0-9a-f]{64}$/;

export interface Schematic {
  /** the shipped profile it customizes (a platform: metal, nocloud, aws, ..., or minimal, default) */
  platform: string;
  arch: string;
  /** layered in this order: catalog extensions by name (NAME, or NAME@sha256:... for one version), or HOST/REPO@sha256:... */
  extensions: string[];
  kernelArgs: string[];
  /** what is built; undefined: the platform's outputs */
  outputs?: Output[];
  /** the UKI and systemd-boot signed for Secure Boot with the factory's db key (the installer carries those) */
  secureBoot: boolean;
}

/** What a factory offers: a schematic naming anything else is refused. */
export interface Offer {
  platforms: readonly string[];
  /** the catalog's entries; one of an image has its digest, by which a schematic may pin it */
  extensions: readonly { name: string; digest?: string }[];
  /** whether images outside the catalog may be named (pinned by digest, signed by a key the factory trusts) */
  images: boolean;
  /** whether the factory holds a Secure Boot db key to sign with */
  secureBoot: boolean;
}

/** What an item of a schematic's extensions names. */
export type ExtensionChoice = { kind: "catalog"; name: string; digest?: string } | { kind: "image"; reference: string; digest: string };

const PINNED = /^(.+)@(sha256:[0-9a-f]{64})$/;

export function extensionChoice(item: string): ExtensionChoice {
  const pinned = PINNED.exec(item);
  const [name, digest] = pinned ? [pinned[1] ?? "", pinned[2] ?? ""] : [item, undefined];
  if (digest && name.includes("/")) return { kind: "image", reference: item, digest };
  return { kind: "catalog", name, ...(digest ? { digest } : {}) };
}

/** Why the catalog or the factory does not take `choice`; undefined when it does. */
function choiceProblem(choice: ExtensionChoice, offer: Offer): string | undefined {
  const names = [...new Set(offer.extensions.map((e) => e.name))].join(", ") || "none";
  if (choice.kind === "image") return offer.images ? undefined : `this factory builds catalog extensions only (${names}); it trusts no key for other images`;
  const versions = offer.extensions.filter((e) => e.name === choice.name);
  if (versions.length === 0) return `extension '${choice.name}' is not in the catalog; it offers ${names}`;
  if (!choice.digest || versions.some((e) => e.digest === choice.digest)) return undefined;
  const digests = versions.map((e) => e.digest).filter(Boolean);
  return digests.length ? `the catalog has no '${choice.name}' ${choice.digest}; it has ${digests.join(", ")}` : `extension '${choice.name}' is built from source here: it cannot be pinned by digest`;
}

const KEYS = ["platform", "arch", "extensions", "kernelArgs", "outputs", "secureBoot"];

/** The canonical bytes of a schematic: what its ID hashes and what the factory stores. */
export function schematicBytes(schematic: Schematic): Buffer {
  return Buffer.from(canonicalJson(schematic));
}

export const schematicId = (schematic: Schematic): string => sha256(schematicBytes(schematic));

/** Reads a schematic sent as `source` (named in errors); every problem names its line and the fix. */
export function parseSchematic(source: string, text: string, offer: Offer): Schematic {
  if (Buffer.byteLength(text) > SCHEMATIC_MAX_BYTES) throw new InputError(`${source}: a schematic is at most ${SCHEMATIC_MAX_BYTES} bytes`);
  const yaml = YamlFile.parse(source, text);
  const f = new FieldReader(yaml);
  const top = f.mapping(yaml.data, []);
  f.onlyKeys(top, [], KEYS);
  // a list of at most MAX_ITEMS; of a set (`once`), none twice
  const limited = (key: string, once = true) => {
    const items = f.list(top[key], [key]);
    if (items.length > MAX_ITEMS) throw yaml.error([key], `at most ${MAX_ITEMS} items`);
    const twice = once ? items.findIndex((item, i) => typeof item === "string" && items.indexOf(item) !== i) : -1;
    if (twice >= 0) throw yaml.error([key, twice], `'${String(items[twice])}' is named twice`);
    return items;
  };
  const platform = f.string(top.platform, ["platform"], NAME, "a profile name");
  if (!offer.platforms.includes(platform)) throw yaml.error(["platform"], `platform '${platform}' is not offered; use one of ${offer.platforms.join(", ")}`);
  const arch = top.arch === undefined ? DEFAULT_ARCH.name : f.string(top.arch, ["arch"]);
  if (!ARCH_NAMES.includes(arch)) throw yaml.error(["arch"], `arch '${arch}' is not offered; use one of ${ARCH_NAMES.join(", ")}`);
  const extensions = limited("extensions").map((item, i) => {
    if (typeof item === "object" && item !== null) {
      throw yaml.error(["extensions", i], `an extension is a catalog name (e.g. ${offer.extensions[0]?.name ?? "hello"}), NAME@sha256:... or HOST/REPO@sha256:..., written as one string`);
    }
    const name = f.string(item, ["extensions", i]);
    const problem = choiceProblem(extensionChoice(name), offer);
    if (problem) throw yaml.error(["extensions", i], problem);
    return name;
  });
  limited("kernelArgs", false);
  const kernelArgs = readKernelArgs(yaml, f, top);
  const secureBoot = top.secureBoot ?? false;
  if (typeof secureBoot !== "boolean") throw yaml.error(["secureBoot"], "secureBoot is true or false");
  if (secureBoot && !offer.secureBoot) throw yaml.error(["secureBoot"], "this factory holds no Secure Boot key to sign with; ask for secureBoot: false");
  const schematic: Schematic = { platform, arch, extensions, kernelArgs, secureBoot };
  if (top.outputs === undefined) return schematic;
  limited("outputs");
  // the set, not the order, is what is built
  return { ...schematic, outputs: readOutputs(yaml, f, top, []).sort() };
}
