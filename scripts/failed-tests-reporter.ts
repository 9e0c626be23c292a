// A node --test reporter for make test (scripts/test.ts): one JSON line per failed test (its file, line,
// name, how long it ran and why it failed), so that the suite can name its failures again at its very end,
// where a CI log's tail shows them, instead of only amid one lane's output an hour above.

/** What scripts/test.ts reads back from each line. */
export interface FailedTest {
  file: string;
  line: number;
  name: string;
  seconds: number;
  /** the first lines of the error */
  why: string[];
}

type FailEvent =
  | {
      type: "test:fail";
      data: {
        name: string;
        file?: string;
        line?: number;
        details: { duration_ms: number; error?: { failureType?: string; message?: string; cause?: unknown } };
      };
    }
  | { type: "test:stderr"; data: { file?: string; message: string } }
  | { type: "other" };

const WHY_LINES = 6;
const LINE_CHARS = 240;

/** The error's own words: an assertion's message and diff, not the runner's wrapper around it. */
function whyOf(error: { message?: string; cause?: unknown } | undefined): string[] {
  const cause = error?.cause;
  const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause ?? error?.message ?? "no error given");
  return shortened(text.split("\n"));
}

const shortened = (lines: readonly string[]) =>
  lines
    .map((line) => line.trimEnd())
    .filter(Boolean)
    .slice(0, WHY_LINES)
    .map((line) => (line.length > LINE_CHARS ? `${line.slice(0, LINE_CHARS)}…` : line));

export default async function* failedTests(source: AsyncIterable<FailEvent>): AsyncGenerator<string> {
  /** what each file printed on stderr last: all there is to say of a file that failed outside its tests */
  const stderr = new Map<string, string[]>();
  for await (const event of source) {
    if (event.type === "test:stderr") {
      // its words, not the stack's frames nor Node's version line
      const said = event.data.message.split("\n").filter((l) => l.trim() && !/^\s+at /.test(l) && !/^Node\.js v/.test(l));
      stderr.set(event.data.file ?? "", [...(stderr.get(event.data.file ?? "") ?? []), ...said].slice(-WHY_LINES));
    }
    if (event.type !== "test:fail") continue;
    const { name, file = "", line = 0, details } = event.data;
    // a test whose subtests failed: those are named themselves
    if (details.error?.failureType === "subtestsFailed") continue;
    const wholeFile = name === file && stderr.has(file);
    const why = wholeFile ? shortened(stderr.get(file) ?? []) : whyOf(details.error);
    yield `${JSON.stringify({ file, line, name, seconds: details.duration_ms / 1000, why } satisfies FailedTest)}\n`;
  }
}
