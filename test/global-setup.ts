// `make test`'s global setup: the minimal image that most integration tests boot, read or extend, built
// once before them (each file still builds it itself when run alone: from the cache, in milliseconds).
import { builtImage } from "./helpers/build.ts";

export async function globalSetup(): Promise<void> {
  await builtImage("minimal");
}
