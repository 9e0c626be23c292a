import assert from "node:assert/strict";
import { test } from "node:test";
import { renderReport, type ReportInput } from "../../src/report/html.ts";
import { squarify } from "../../src/report/treemap.ts";

test("squarify fills the rectangle with cells whose areas are in proportion to the values, without overlap", () => {
  const items = [6, 6, 4, 3, 2, 2, 1].map((value, i) => ({ label: `item ${i}`, value }));
  const cells = squarify(items, 600, 400);
  assert.equal(cells.length, items.length);
  const total = items.reduce((a, i) => a + i.value, 0);
  for (const c of cells) {
    assert.ok(Math.abs((c.w * c.h) / (600 * 400) - c.value / total) < 1e-9, `${c.label}'s area`);
    assert.ok(c.x >= -1e-9 && c.y >= -1e-9 && c.x + c.w <= 600 + 1e-9 && c.y + c.h <= 400 + 1e-9, `${c.label} inside`);
    assert.ok(Math.max(c.w / c.h, c.h / c.w) < 4, `${c.label} is not a sliver`);
  }
  for (const a of cells) {
    for (const b of cells) {
      if (a === b) continue;
      const overlap = Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x)) * Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y));
      assert.ok(overlap < 1e-6, `${a.label} and ${b.label} overlap`);
    }
  }
  assert.deepEqual(squarify([{ label: "empty", value: 0 }], 100, 100), []);
});

/** A report of nothing, with `parts` of it given. */
function report(parts: Partial<ReportInput>): string {
  return renderReport({
    profile: "p",
    arch: "x86_64",
    version: "1.0.0",
    kernelRelease: "6.1",
    moduleCount: 0,
    moduleSigningCertSha256: "00",
    artifacts: [],
    breakdowns: [],
    timeline: [],
    hardening: { rules: "r", decisions: [], summary: { checks: 0, ok: 0, fail: 0, suppressed: 0, gatedFail: 0, ungatedFail: 0 }, suppressed: [] },
    sbom: [],
    ...parts,
  });
}

test("the report escapes what it shows", () => {
  const html = report({
    artifacts: [{ name: "<b>x</b>", size: 1 }],
    breakdowns: [{ title: "t", note: "n", items: [{ label: 'a"&<', value: 1 }] }],
    timeline: [{ step: "s<", startMs: 0, durationMs: 1, cached: false }],
  });
  assert.ok(html.includes("&lt;b&gt;x&lt;/b&gt;") && html.includes("a&quot;&amp;&lt;") && html.includes("s&lt;"));
  assert.ok(!html.includes("<b>x</b>"));
});

test("a step served from the cache shows its time in this build and the time it took when it was built", () => {
  const html = report({
    timeline: [
      { step: "kernel 6.1 (profile p)", startMs: 0, durationMs: 40, cached: true, builtMs: 327_140 },
      { step: "UKI", startMs: 40, durationMs: 1200, cached: false },
    ],
  });
  assert.match(html, /kernel 6\.1 \(profile p\) \(cached\)<\/text>.*0\.04 s; built in 327\.1 s<\/text>/);
  assert.match(html, /UKI<\/text>.*>1\.20 s<\/text>/);
  assert.doesNotMatch(html, /UKI<\/text>[^\n]*?built in/);
  assert.match(html, /1 ran, 1 came from the cache/);
});
