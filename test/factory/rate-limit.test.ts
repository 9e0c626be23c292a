import assert from "node:assert/strict";
import { test } from "node:test";
import { RateLimit } from "../../src/factory/rate-limit.ts";

const MINUTE = 60_000;

test("at most the limit per address in any minute, also across the turn of the clock's minute; refused requests do not count", () => {
  const rate = new RateLimit(3);
  // three just before a minute turns, one just after: a fixed per-minute window would admit it
  const start = 10 * MINUTE - 500;
  for (const at of [start, start + 100, start + 200]) assert.deepEqual(rate.admit("10.0.0.1", at), { admitted: true });
  assert.deepEqual(rate.admit("10.0.0.1", start + 700), { admitted: false, retryAfterS: 60 });
  assert.deepEqual(rate.admit("10.0.0.2", start + 700), { admitted: true }, "each address has its own limit");
  // the oldest admitted request leaves the window a minute after it came, refusals or not
  assert.deepEqual(rate.admit("10.0.0.1", start + MINUTE - 1), { admitted: false, retryAfterS: 1 });
  assert.deepEqual(rate.admit("10.0.0.1", start + MINUTE + 1), { admitted: true });
  assert.deepEqual(rate.admit("10.0.0.1", start + MINUTE + 2), { admitted: false, retryAfterS: 1 });
  assert.deepEqual(rate.admit("10.0.0.1", start + MINUTE + 99), { admitted: false, retryAfterS: 1 });
  assert.deepEqual(rate.admit("10.0.0.1", start + MINUTE + 100), { admitted: true });
});

test("addresses quiet for a minute are forgotten: what it holds stays bounded by who asked lately", () => {
  const rate = new RateLimit(600);
  for (let i = 0; i < 1000; i++) rate.admit(`10.0.${i >> 8}.${i & 255}`, 1000 + i);
  assert.equal(rate.addresses, 1000);
  rate.admit("10.9.9.9", 1000 + 999 + MINUTE + 1);
  assert.equal(rate.addresses, 1, "only the address that asked last");
});
