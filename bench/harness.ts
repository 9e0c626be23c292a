// The bench's harness: figures, their statistics, and pairs of commands measured back to back.

export const RUNS = Number(process.env.BENCH_RUNS ?? 5);

export interface Stats {
  median: number;
  min: number;
  max: number;
}
export interface Figure {
  name: string;
  unit: string;
  value?: Stats;
  /** candidate / baseline, pair by pair */
  ratio?: Stats;
  baseline?: Stats;
  goal?: string;
  note?: string;
}

export function stats(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return { median, min: sorted[0] ?? 0, max: sorted.at(-1) ?? 0 };
}

export async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/**
 * Runs baseline and candidate back to back RUNS times (after one warm-up each).
 * With `selfTimed`, each returns its own duration in ms, so that set-up it does is not counted.
 */
export async function pair(name: string, goal: string, baseline: () => Promise<unknown>, candidate: () => Promise<unknown>, selfTimed = false): Promise<Figure> {
  await baseline();
  await candidate();
  const base: number[] = [];
  const cand: number[] = [];
  const ratios: number[] = [];
  const measure = async (work: () => Promise<unknown>) => (selfTimed ? Number(await work()) : timed(work));
  for (let i = 0; i < RUNS; i++) {
    const b = await measure(baseline);
    const c = await measure(candidate);
    base.push(b);
    cand.push(c);
    ratios.push(c / b);
  }
  return { name, unit: "ms", value: stats(cand), baseline: stats(base), ratio: stats(ratios), goal };
}
