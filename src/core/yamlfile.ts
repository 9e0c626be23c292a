import { readFile } from "node:fs/promises";
import { LineCounter, parseDocument, type Document } from "yaml";
import { InputError } from "./errors.ts";
import { displayPath } from "./paths.ts";

/** A parsed YAML file that can point at the line of any item, for error messages. */
export class YamlFile {
  readonly path: string;
  readonly data: unknown;
  private readonly doc: Document;
  private readonly lines: LineCounter;

  private constructor(path: string, doc: Document, lines: LineCounter) {
    this.path = path;
    this.doc = doc;
    this.lines = lines;
    this.data = doc.toJS();
  }

  static async load(path: string): Promise<YamlFile> {
    const text = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
      throw new InputError(`${displayPath(path)}: cannot read: ${e.code ?? e.message}`);
    });
    return YamlFile.parse(path, text);
  }

  static parse(path: string, text: string): YamlFile {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const first = doc.errors[0];
    if (first) {
      const line = first.linePos?.[0]?.line ?? lines.linePos(first.pos[0]).line;
      throw new InputError(`${displayPath(path)}:${line}: not valid YAML: ${first.message.split("\n")[0]}`);
    }
    return new YamlFile(path, doc, lines);
  }

  /** The 1-based line of the item at `keys` (or of its nearest existing parent). */
  lineOf(keys: readonly (string | number)[]): number {
    for (let n = keys.length; n >= 0; n--) {
      const node = this.doc.getIn(keys.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      const offset = node?.range?.[0];
      if (offset !== undefined) return this.lines.linePos(offset).line;
    }
    return 1;
  }

  /** An InputError naming this file and the line of the item. */
  error(keys: readonly (string | number)[], message: string): InputError {
    return new InputError(`${displayPath(this.path)}:${this.lineOf(keys)}: ${message}`);
  }

}

/** Field checks shared by every schema: each throws an InputError at the item's line. */
export class FieldReader {
  readonly file: YamlFile;
  constructor(file: YamlFile) {
    this.file = file;
  }

  mapping(value: unknown, at: (string | number)[]): Record<string, unknown> {
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      throw this.file.error(at, `${describe(at)} must be a mapping`);
    }
    return value as Record<string, unknown>;
  }

  onlyKeys(value: Record<string, unknown>, at: (string | number)[], allowed: readonly string[]): void {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) {
        throw this.file.error([...at, key], `unknown key '${key}' in ${describe(at)}; allowed: ${allowed.join(", ")}`);
      }
    }
  }

  string(value: unknown, at: (string | number)[], pattern?: RegExp, hint?: string): string {
    if (typeof value === "number") {
      throw this.file.error(at, `${describe(at)} is read as the number ${value}; quote it ("${value}") to keep it text`);
    }
    if (typeof value !== "string" || value === "") {
      throw this.file.error(at, `${describe(at)} must be a non-empty string`);
    }
    if (pattern && !pattern.test(value)) {
      throw this.file.error(at, `${describe(at)} '${value}' is not valid${hint ? `: ${hint}` : ""}`);
    }
    return value;
  }

  optionalString(value: unknown, at: (string | number)[]): string | undefined {
    return value === undefined ? undefined : this.string(value, at);
  }

  list(value: unknown, at: (string | number)[]): unknown[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw this.file.error(at, `${describe(at)} must be a list`);
    return value;
  }

  integer(value: unknown, at: (string | number)[]): number {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
      throw this.file.error(at, `${describe(at)} must be a whole number`);
    }
    return value;
  }
}

function describe(at: readonly (string | number)[]): string {
  return at.length ? `'${at.join(".")}'` : "the file";
}
