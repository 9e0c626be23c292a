import { inputKey } from "./hash.ts";
import type { Store, StoreEntry } from "./store.ts";

/** Where a cached step looks its entry up, and where it tells that it ran. */
export interface StepContext {
  store: Store;
  /** the names of the steps that ran (were not served from the cache), in the order they started */
  ran: string[];
  /** the steps served from the cache, with how long each took when it was built */
  served: { name: string; builtMs: number }[];
}

/** A build step whose output is a cache entry: what it is made of, how it is made, what it gives. */
export interface CachedStep<A> {
  /** as the cache entry and the build's summary name it: "package musl", "rootfs", "uki" */
  name: string;
  /** everything that can change the output; its hash is the entry's key */
  inputs: Record<string, unknown>;
  /** fills `outDir` with the entry's files and returns its facts; runs only when no entry serves */
  produce: (outDir: string, key: string) => Promise<Record<string, string> | void>;
  /** what a served or new entry gives the steps after it */
  artifact: (entry: StoreEntry) => A;
  /** checks a served entry before it is used (a failure stops the build, as it would when made anew) */
  whenServed?: (entry: StoreEntry) => Promise<void>;
  /** how long the entry took to make, from its record (default: the step's own recorded time) */
  builtMs?: (entry: StoreEntry) => number;
}

/** Runs a cached step: its entry from the cache when there is one (verified), else made and committed. */
export async function cachedStep<A>(ctx: StepContext, step: CachedStep<A>): Promise<A> {
  const key = inputKey(step.inputs);
  const served = await ctx.store.lookup(key);
  if (served) {
    await step.whenServed?.(served);
    ctx.served.push({ name: step.name, builtMs: step.builtMs?.(served) ?? served.record.durationMs });
    return step.artifact(served);
  }
  ctx.ran.push(step.name);
  const entry = await ctx.store.put(key, step.name, step.inputs, async (outDir) => (await step.produce(outDir, key)) ?? {});
  return step.artifact(entry);
}
