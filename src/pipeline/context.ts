import { availableParallelism } from "node:os";
import { join } from "node:path";
import { defaultCacheDir, Store } from "../core/store.ts";
import { keepToolVersionsIn } from "../core/tools.ts";
import { CompileCache, type KernelContext } from "../kernel/compile-cache.ts";

/** What a whole build's steps share: every stage's context (the kernel's is the widest). */
export type PipelineContext = KernelContext;

export function createContext(projectRoot: string, epoch: number, cacheDir?: string, compileCacheDir?: string): PipelineContext {
  const cache = cacheDir ?? defaultCacheDir(projectRoot);
  const workDir = process.env.BRONZE_WORK ?? join(projectRoot, "_work");
  keepToolVersionsIn(join(cache, "tool-versions.json"));
  return {
    projectRoot,
    store: new Store(cache),
    cacheDir: cache,
    compileCache: new CompileCache(compileCacheDir ?? join(cache, "compile")),
    workDir,
    logDir: join(workDir, "logs"),
    epoch,
    jobs: availableParallelism(),
    ran: [],
    served: [],
  };
}
