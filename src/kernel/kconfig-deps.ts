/**
 * Why a Kconfig option did not take: the conditions it sits under (its own
 * `depends on`, enclosing `if` blocks and menus), read from the Kconfig files,
 * and which symbols in them are off. A reading for error messages, not a
 * Kconfig evaluator.
 */

export type KconfigReader = (path: string) => string | undefined;

interface Definition {
  file: string;
  line: number;
  conditions: string[];
}

interface Scope {
  kind: "if" | "menu" | "choice";
  conditions: string[];
}

const SOURCE = /^\s*[or]?source\s+"([^"]+)"/;
const ENTRY = /^\s*(menuconfig|config)\s+([A-Za-z0-9_]+)\s*$/;

/** Every definition of each symbol, with the conditions in force there. */
export function kconfigDefinitions(read: KconfigReader, srcArch: string, wanted: ReadonlySet<string>): Map<string, Definition[]> {
  const found = new Map<string, Definition[]>();
  const scopes: Scope[] = [];
  const visit = (file: string): void => {
    const text = read(file);
    if (text === undefined) return;
    let current: { conditions: string[] } | undefined;
    // help text runs until a line indented less than its first line
    let inHelp = false;
    let helpIndent = -1;
    text.split("\n").forEach((raw, i) => {
      if (inHelp) {
        if (raw.trim() === "") return;
        const indent = indentOf(raw);
        if (helpIndent < 0) helpIndent = indent;
        if (indent >= helpIndent) return;
        inHelp = false;
      }
      const line = raw.replace(/#.*$/, "").trimEnd();
      const source = SOURCE.exec(line);
      const entry = ENTRY.exec(line);
      const word = line.trim().split(/\s+/)[0];
      if (word === "help" || word === "---help---") {
        inHelp = true;
        helpIndent = -1;
      } else if (source?.[1]) {
        current = undefined;
        visit(source[1].replace("$(SRCARCH)", srcArch));
      } else if (entry?.[2]) {
        const conditions = scopes.flatMap((s) => s.conditions);
        current = { conditions };
        if (wanted.has(entry[2])) {
          const list = found.get(entry[2]) ?? [];
          list.push({ file, line: i + 1, conditions });
          found.set(entry[2], list);
        }
      } else if (word === "if") {
        scopes.push({ kind: "if", conditions: [line.trim().slice(2).trim()] });
        current = undefined;
      } else if (word === "menu" || word === "choice") {
        const scope: Scope = { kind: word, conditions: [] };
        scopes.push(scope);
        current = scope;
      } else if (word === "endif" || word === "endmenu" || word === "endchoice") {
        scopes.pop();
        current = undefined;
      } else if (current && /^\s*depends\s+on\s+/.test(line)) {
        current.conditions.push(line.replace(/^\s*depends\s+on\s+/, "").trim());
      }
    });
  };
  visit("Kconfig");
  return found;
}

function indentOf(line: string): number {
  let width = 0;
  for (const ch of line) {
    if (ch === " ") width++;
    else if (ch === "\t") width = (Math.floor(width / 8) + 1) * 8;
    else break;
  }
  return width;
}

/** Symbols named in the conditions that are off in the resolved config. */
export function offSymbols(conditions: readonly string[], values: ReadonlyMap<string, string>): string[] {
  const names = new Set(conditions.flatMap((c) => c.match(/\b[A-Z][A-Z0-9_]*\b/g) ?? []));
  return [...names].filter((name) => (values.get(`CONFIG_${name}`) ?? "n") === "n");
}
