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

interface FailEvent {
  type: string;
  data: {
    name: string;
    file?: string;
    line?: number;
    details: { duration_ms: number; error?: { failureType?: string; message?: string; cause?: unknown } };
  };
}

const WHY_LINES = 6;
const LINE_CHARS = 240;

/** The error's own words: an assertion's message and diff, not the runner's wrapper around it. */
function whyOf(error: FailEvent["data"]["details"]["error"]): string[] {
  const cause = error?.cause;
  const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause ?? error?.message ?? "no error given");
  const lines = text.split("\n").map((line) => line.trimEnd()).filter(Boolean);
  return lines.slice(0, WHY_LINES).map((line) => (line.length > LINE_CHARS ? `${line.slice(0, LINE_CHARS)}…` : line));
}

export default async function* failedTests(source: AsyncIterable<FailEvent>): AsyncGenerator<string> {
  for await (const event of source) {
    if (event.type !== "test:fail") continue;
    const { name, file, line, details } = event.data;
    // a test whose subtests failed: those are named themselves
    if (details.error?.failureType === "subtestsFailed") continue;
    const failed: FailedTest = { file: file ?? "", line: line ?? 0, name, seconds: details.duration_ms / 1000, why: whyOf(details.error) };
    yield `${JSON.stringify(failed)}\n`;
  }
}
