import { stat } from "node:fs/promises";
import { InputError } from "../core/errors.ts";

/** host[:port]/repository[:tag|@digest] */
export interface Reference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Parses a registry reference; the registry host is required (no implicit default registry). */
export function parseReference(text: string): Reference {
  const fix = "write it as HOST[:PORT]/REPOSITORY[:TAG|@sha256:DIGEST], e.g. 127.0.0.1:5000/bronze/installer:0.1.0";
  const slash = text.indexOf("/");
  if (slash <= 0) throw new InputError(`reference '${text}' names no registry; ${fix}`);
  const registry = text.slice(0, slash);
  let rest = text.slice(slash + 1);
  let digest: string | undefined;
  let tag: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new InputError(`reference '${text}': '${digest}' is not a sha256 digest; ${fix}`);
  }
  const colon = rest.lastIndexOf(":");
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new InputError(`reference '${text}': '${tag}' is not a valid tag; ${fix}`);
  }
  if (!REPOSITORY.test(rest)) throw new InputError(`reference '${text}': '${rest}' is not a valid repository name (lowercase, digits, separators); ${fix}`);
  if (!/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/.test(registry)) throw new InputError(`reference '${text}': '${registry}' is not a registry host; ${fix}`);
  return { registry, repository: rest, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** Whether the registry host is this machine (plain HTTP is allowed there without asking). */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * What a command's image argument names: a registry reference, or undefined for a local path (one that
 * exists, or that is written as one: no '/', or starting with '/' or '.'), which the caller opens.
 */
export async function registryTarget(spec: string): Promise<Reference | undefined> {
  const exists = await stat(spec).then(
    () => true,
    () => false,
  );
  if (exists || !spec.includes("/") || spec.startsWith("/") || spec.startsWith(".")) return undefined;
  return parseReference(spec);
}
