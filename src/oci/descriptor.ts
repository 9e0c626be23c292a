/**
 * JSON read from outside (an OCI layout's index.json, a manifest, a config, an index blob) checked for the
 * shape its reader relies on: each way it can be wrong is an InputError naming where and which field.
 */
import { InputError } from "../core/errors.ts";
import type { Descriptor } from "./image.ts";

const DIGEST = /^sha256:[0-9a-f]{64}$/;

type Json = Record<string, unknown>;

/** `bytes` as a JSON object, or an error naming `where` and what the parser found. */
export function parseObject(where: string, bytes: Buffer): Json {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    throw new InputError(`${where}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(value)) throw new InputError(`${where}: a JSON object was expected, not ${kind(value)}`);
  return value;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function kind(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}

function isStringMap(value: unknown): value is Record<string, string> {
  return isObject(value) && Object.values(value).every((v) => typeof v === "string");
}

/** One descriptor: mediaType, a sha256 digest, a size; platform and annotations when present of the right kind. */
export function descriptorAt(where: string, field: string, value: unknown): Descriptor {
  const wrong = (what: string) => new InputError(`${where}: ${field}: ${what}`);
  if (!isObject(value)) throw wrong(`a descriptor (an object) was expected, not ${kind(value)}`);
  const { mediaType, digest, size, platform, annotations } = value;
  if (typeof mediaType !== "string") throw wrong(`mediaType must be a string, not ${kind(mediaType)}`);
  if (typeof digest !== "string" || !DIGEST.test(digest)) throw wrong(`digest must be sha256:<64 hex digits>, not ${JSON.stringify(digest)}`);
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) throw wrong(`size must be a whole number of bytes, not ${JSON.stringify(size)}`);
  if (platform !== undefined && !(isObject(platform) && typeof platform.architecture === "string" && typeof platform.os === "string")) {
    throw wrong("platform must be an object with architecture and os strings");
  }
  if (annotations !== undefined && !isStringMap(annotations)) throw wrong("annotations must map strings to strings");
  return value as unknown as Descriptor;
}

/** The descriptors of an object's array `field` (manifests, layers). */
export function descriptorsAt(where: string, object: Json, field: string): Descriptor[] {
  const list = object[field];
  if (!Array.isArray(list)) throw new InputError(`${where}: ${field} must be an array of descriptors, not ${kind(list)}`);
  return list.map((item, i) => descriptorAt(where, `${field}[${i}]`, item));
}
