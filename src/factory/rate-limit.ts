/** How long the rate limit looks back. */
const WINDOW_MS = 60_000;

/**
 * At most `limit` requests per address in any minute: a sliding window over the times of the requests
 * it admitted, so that no burst across the turn of a clock's minute gets twice the limit through.
 */
export class RateLimit {
  private readonly limit: number;
  private readonly admitted = new Map<string, number[]>();
  private swept = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Admits a request from `address` at `now`, or says in how many seconds the address may ask again. */
  admit(address: string, now = Date.now()): { admitted: true } | { admitted: false; retryAfterS: number } {
    this.sweep(now);
    const recent = (this.admitted.get(address) ?? []).filter((at) => at > now - WINDOW_MS);
    if (recent.length >= this.limit) {
      this.admitted.set(address, recent);
      return { admitted: false, retryAfterS: Math.max(1, Math.ceil((recent[0]! + WINDOW_MS - now) / 1000)) };
    }
    recent.push(now);
    this.admitted.set(address, recent);
    return { admitted: true };
  }

  /** Forgets the addresses that asked nothing in the last window, once a window. */
  private sweep(now: number): void {
    if (now - this.swept < WINDOW_MS) return;
    this.swept = now;
    for (const [address, times] of this.admitted) {
      if ((times.at(-1) ?? 0) <= now - WINDOW_MS) this.admitted.delete(address);
    }
  }

  /** How many addresses it holds times for (each with at most `limit`). */
  get addresses(): number {
    return this.admitted.size;
  }
}
