/**
 * The size budget: a build fails when an artifact grows past a percentage over the previous
 * build of the same profile, and says which components (packages, the kernel) grew. Pure.
 */

export interface SizeRecord {
  /** artifact name -> bytes */
  artifacts: Record<string, number>;
  /** component (package name, or "kernel <profile>") -> bytes of what it installs */
  components: Record<string, number>;
}

export interface BudgetOverrun {
  artifact: string;
  before: number;
  after: number;
  percent: number;
}

export interface BudgetVerdict {
  overruns: BudgetOverrun[];
  /** components that grew (or are new), largest growth first */
  grew: { component: string; before: number; after: number }[];
}

const growth = (before: number, after: number) => (before > 0 ? ((after - before) / before) * 100 : after > 0 ? Infinity : 0);

export function checkSizeBudget(previous: SizeRecord, current: SizeRecord, percent: number): BudgetVerdict {
  const overruns: BudgetOverrun[] = [];
  for (const [artifact, after] of Object.entries(current.artifacts)) {
    const before = previous.artifacts[artifact];
    if (before === undefined) continue; // a new artifact has nothing to grow from
    const grown = growth(before, after);
    if (grown > percent) overruns.push({ artifact, before, after, percent: grown });
  }
  const grew = Object.entries(current.components)
    .map(([component, after]) => ({ component, before: previous.components[component] ?? 0, after }))
    .filter((c) => c.after > c.before)
    .sort((a, b) => b.after - b.before - (a.after - a.before));
  return { overruns, grew };
}

const bytes = (n: number) => n.toLocaleString("en-US");

/** The failure message: each artifact over budget, then who grew. */
export function describeOverrun(verdict: BudgetVerdict, percent: number, profileFile: string): string {
  const lines = verdict.overruns.map((o) => `  ${o.artifact}: ${bytes(o.before)} -> ${bytes(o.after)} bytes (+${o.percent.toFixed(1)}%, budget ${percent}%)`);
  const who = verdict.grew.map((g) => `  ${g.component}: ${g.before ? `${bytes(g.before)} -> ${bytes(g.after)} bytes (+${bytes(g.after - g.before)})` : `new, ${bytes(g.after)} bytes`}`);
  return [
    `size budget exceeded against the previous build of this profile:`,
    ...lines,
    who.length ? "what grew:" : "no component grew: the growth is in what bronze adds (metadata, compression)",
    ...who,
    `raise sizeBudget.percent in ${profileFile}, or accept this growth once with --accept-size-growth`,
  ].join("\n");
}
