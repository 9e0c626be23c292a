import type { StepContext } from "./step.ts";
import type { Store } from "./store.ts";

/** Where a build reads and writes, and the settings every step shares (pipeline/context makes it). */
export interface BuildContext extends StepContext {
  projectRoot: string;
  store: Store;
  cacheDir: string;
  /** scratch space for build trees, removed after each successful step */
  workDir: string;
  logDir: string;
  /** SOURCE_DATE_EPOCH for the image assembly steps */
  epoch: number;
  jobs: number;
}
