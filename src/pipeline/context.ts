import { availableParallelism } from "node:os";
import { join } from "node:path";
import { defaultCacheDir, Store } from "../core/store.ts";
import { keepToolVersionsIn } from "../core/tools.ts";
import { CompileCache } from "../kernel/compile-cache.ts";

/** Where a build reads and writes, and the settings every step shares. */
export interface BuildContext {
  projectRoot: string;
  store: Store;
  cacheDir: string;
  /** this machine's compiled kernel trees (never shared, never key material) */
  compileCache: CompileCache;
  /** scratch space for build trees, removed after each successful step */
  workDir: string;
  logDir: string;
  /** SOURCE_DATE_EPOCH for the image assembly steps */
  epoch: number;
  jobs: number;
  /** names of the steps that actually ran (not served from the cache) */
  ran: string[];
}

export function createContext(projectRoot: string, epoch: number, cacheDir?: string, compileCacheDir?: string): BuildContext {
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
  };
}
