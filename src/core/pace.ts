/**
 * For loops of synchronous file system calls (a file at a time through the thread pool costs ~0.25 ms of
 * round trips, 20 s for a kernel tree's 80,000 files): `await pace()` after each call lets the rest of the
 * build run every 20 ms.
 */
export function pacer(everyMs = 20): () => Promise<void> {
  let resumed = Date.now();
  return async () => {
    if (Date.now() - resumed < everyMs) return;
    await new Promise((resolve) => setImmediate(resolve));
    resumed = Date.now();
  };
}
