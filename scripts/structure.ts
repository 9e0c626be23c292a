// `make structure`: the counts the redesign (one step model, outputs and architectures as data) is
// measured by, read from src/ with the TypeScript parser. Prints each count and the places behind it.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

// another tree's src/ may be given, to compare with
const src = process.argv[2] ?? join(import.meta.dirname, "..", "src");
const MAX_FUNCTION_LINES = 80;
const MAX_IMPORTS = 25;

const files = (readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith(".ts")).map((f) => join(src, f)).sort();

interface Count {
  what: string;
  places: string[];
}

const counts: Count[] = [
  { what: `functions over ${MAX_FUNCTION_LINES} lines`, places: [] },
  { what: `files with more than ${MAX_IMPORTS} imports`, places: [] },
  { what: "cache lookups outside the cached-step helper (core/step.ts)", places: [] },
  { what: "architecture names outside core/arch.ts (and the hardening checker's own vocabulary)", places: [] },
  { what: "modules that start processes besides core/exec.ts (execa, child_process)", places: [] },
  { what: "renames outside core/atomic.ts (the one atomic write and move)", places: [] },
  { what: "string literals naming uki.efi outside the outputs table (core/outputs.ts)", places: [] },
];
const [longFunctions, manyImports, lookups, archNames, processes, renames, ukiNames] = counts as [Count, Count, Count, Count, Count, Count, Count];

const ARCH_WORDS = /\b(x86_64|amd64|aarch64|arm64|x64|aa64|BOOTX64|BOOTAA64)\b|arch\/x86/;
const HARDENING_VOCABULARY = new Set(["harden/arches.ts", "harden/rules.ts", "harden/rule-model.ts", "harden/inputs.ts"]);
const PROCESS_MODULES = new Set(["execa", "node:child_process", "child_process"]);

for (const file of files) {
  const rel = relative(src, file);
  const text = readFileSync(file, "utf8");
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const line = (pos: number) => source.getLineAndCharacterOfPosition(pos).line + 1;
  let imports = 0;
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      imports++;
      const from = (node.moduleSpecifier as ts.StringLiteral).text;
      if (PROCESS_MODULES.has(from) && !node.importClause?.isTypeOnly && rel !== "core/exec.ts") processes.places.push(`${rel}:${line(node.getStart())}`);
    }
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      if (arg && ts.isStringLiteral(arg) && PROCESS_MODULES.has(arg.text) && rel !== "core/exec.ts") processes.places.push(`${rel}:${line(node.getStart())}`);
    }
    const isFunction = ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isArrowFunction(node) || ts.isFunctionExpression(node);
    if (isFunction && node.body) {
      const lines = line(node.body.getEnd()) - line(node.getStart()) + 1;
      if (lines > MAX_FUNCTION_LINES) {
        const name = ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) ? (node.name?.getText() ?? "(anonymous)") : "(arrow)";
        longFunctions.places.push(`${rel}:${line(node.getStart())} ${name} (${lines} lines)`);
      }
    }
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) && node.expression.name.text === "lookup" && /store/.test(node.expression.expression.getText()) && rel !== "core/step.ts") {
      lookups.places.push(`${rel}:${line(node.getStart())}`);
    }
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === "rename" && rel !== "core/atomic.ts") {
      renames.places.push(`${rel}:${line(node.getStart())}`);
    }
    if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node)) && node.parent && !ts.isImportDeclaration(node.parent)) {
      if (/\buki\.efi\b/.test(node.text) && rel !== "core/outputs.ts") ukiNames.places.push(`${rel}:${line(node.getStart())}`);
      if (rel !== "core/arch.ts" && !HARDENING_VOCABULARY.has(rel) && ARCH_WORDS.test(node.text)) archNames.places.push(`${rel}:${line(node.getStart())} ${JSON.stringify(node.text.slice(0, 60))}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  if (imports > MAX_IMPORTS) manyImports.places.push(`${rel} (${imports})`);
}

for (const { what, places } of counts) {
  console.log(`${String(places.length).padStart(4)}  ${what}`);
  for (const place of places) console.log(`        ${place}`);
}
