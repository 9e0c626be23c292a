import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { BronzeError, EXIT_FAILURE } from "../core/errors.ts";
import type { CliEnv } from "./commands.ts";

const GIB = 1024 ** 3;

function gibibytes(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("give a size in GiB, 0 or more (e.g. 8 or 0.5)");
  return n * GIB;
}

interface CacheOptions {
  cacheDir?: string;
  compileCache?: string;
}

const contextOf = async (projectRoot: string, opts: CacheOptions) => (await import("../pipeline/context.ts")).createContext(projectRoot, 0, opts.cacheDir, opts.compileCache);

/** `bronze cache verify` and `bronze cache prune`: the local cache's integrity and size. */
export function registerCacheCommands(program: Command, { projectRoot }: CliEnv): void {
  const cache = program.command("cache").description("this machine's build cache");
  const withDirs = (command: Command) =>
    command
      .option("--cache-dir <dir>", "content-addressed cache (default: .cache/bronze, or $BRONZE_CACHE)")
      .option("--compile-cache <dir>", "compiled kernel trees (default: compile/ in the cache directory)");

  withDirs(cache.command("verify"))
    .description("hash every cache entry's files against the digest it recorded; corrupt entries are discarded (the next build makes them again)")
    .action(async (opts: CacheOptions) => {
      const ctx = await contextOf(projectRoot, opts);
      const { ok, discarded } = await ctx.store.verifyAll();
      const trees = await ctx.compileCache.verifyAll();
      console.log(`bronze cache verify: ${ok} entr${ok === 1 ? "y" : "ies"} intact, ${discarded.length} discarded; ${trees.ok} compiled kernel tree(s) intact, ${trees.discarded.length} discarded`);
      for (const key of [...discarded, ...trees.discarded]) console.log(`  discarded ${key}`);
      if (discarded.length || trees.discarded.length) throw new BronzeError("the cache held corrupt entries (discarded, listed above)", EXIT_FAILURE);
    });

  withDirs(cache.command("prune"))
    .description("remove the least recently used compiled kernel trees and unpacked kernel sources until the rest fit in --max-size")
    .option("--max-size <GiB>", "what the compiled trees and unpacked sources may take, in GiB", gibibytes, 8 * GIB)
    .action(async (opts: CacheOptions & { maxSize: number }) => {
      const ctx = await contextOf(projectRoot, opts);
      const removed = await ctx.compileCache.prune(opts.maxSize);
      const freed = removed.reduce((sum, e) => sum + e.bytes, 0);
      console.log(`bronze cache prune: removed ${removed.length} compiled kernel tree(s) or unpacked source(s), ${(freed / GIB).toFixed(2)} GiB`);
    });
}
