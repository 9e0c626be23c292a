import { squarify, type TreemapItem } from "./treemap.ts";

/**
 * report.html: one self-contained page (inline CSS and SVG, no script, nothing fetched) with the
 * size breakdown as treemaps, the build's timeline, the hardening summary and the SBOM. Pure.
 */

export interface ReportInput {
  profile: string;
  arch: string;
  version: string;
  kernelRelease: string;
  moduleCount: number;
  moduleSigningCertSha256: string;
  artifacts: { name: string; size: number }[];
  /** each becomes a treemap: e.g. the UKI by section, the initramfs by file, the rootfs by package */
  breakdowns: { title: string; note: string; items: TreemapItem[] }[];
  /** the steps of this build in order, with when they started (ms from the build's start) */
  /** `builtMs`: for a step served from the cache, how long it took when it was built (from the cache's record) */
  timeline: { step: string; startMs: number; durationMs: number; cached: boolean; builtMs?: number }[];
  hardening: {
    rules: string;
    decisions: readonly string[];
    summary: { checks: number; ok: number; fail: number; suppressed: number; gatedFail: number; ungatedFail: number };
    suppressed: { option: string; reason: string }[];
  };
  sbom: { name: string; version: string; license: string; kind: string; purl?: string | undefined }[];
  /** the vulnerability gate's verdict, when the profile has one */
  vulnerabilities?: {
    failOn: string;
    advisories: number;
    rows: { component: string; advisory: string; severity: string; fixed: string | null; decision: string }[];
  };
}

export const TREEMAP_COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"] as const;
const CACHED_COLOR = "#bab0ac";

/** Text made safe to put in HTML, in an element or a quoted attribute. */
export const esc = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");

export function humanBytes(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

function treemap(title: string, note: string, items: readonly TreemapItem[]): string {
  const width = 560;
  const height = 300;
  const cells = squarify(items, width, height);
  const total = items.reduce((a, i) => a + i.value, 0);
  const rects = cells
    .map((c, i) => {
      const color = TREEMAP_COLORS[i % TREEMAP_COLORS.length] as string;
      const label = c.w > 70 && c.h > 30 ? `<text x="${(c.x + 4).toFixed(1)}" y="${(c.y + 16).toFixed(1)}">${esc(c.label)}</text><text x="${(c.x + 4).toFixed(1)}" y="${(c.y + 30).toFixed(1)}" class="small">${humanBytes(c.value)}</text>` : "";
      return `<g><title>${esc(c.label)}: ${humanBytes(c.value)} (${((c.value / total) * 100).toFixed(1)}%)</title><rect x="${c.x.toFixed(1)}" y="${c.y.toFixed(1)}" width="${c.w.toFixed(1)}" height="${c.h.toFixed(1)}" fill="${color}" stroke="#fff"/>${label}</g>`;
    })
    .join("");
  const legend = cells.map((c, i) => `<li><span class="swatch" style="background:${TREEMAP_COLORS[i % TREEMAP_COLORS.length] ?? ""}"></span>${esc(c.label)} — ${humanBytes(c.value)}</li>`).join("");
  return `<figure class="treemap"><figcaption>${esc(title)} <span class="small">(${humanBytes(total)}; ${esc(note)})</span></figcaption><svg role="img" aria-label="${esc(title)} treemap" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">${rects}</svg><ul class="legend">${legend}</ul></figure>`;
}

function timeline(steps: ReportInput["timeline"]): string {
  const end = Math.max(1, ...steps.map((s) => s.startMs + s.durationMs));
  const width = 900;
  const barArea = 600;
  const row = 22;
  const bars = steps
    .map((s, i) => {
      const x = 280 + (s.startMs / end) * barArea;
      const w = Math.max(2, (s.durationMs / end) * barArea);
      const y = i * row + 4;
      const seconds = `${(s.durationMs / 1000).toFixed(2)} s`;
      const built = s.cached && s.builtMs !== undefined ? `; built in ${(s.builtMs / 1000).toFixed(1)} s` : "";
      return `<g><title>${esc(s.step)}: ${seconds}${s.cached ? ` (from cache${built})` : ""}</title><text x="0" y="${y + 14}">${esc(s.step)}${s.cached ? " (cached)" : ""}</text><rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${row - 6}" fill="${s.cached ? CACHED_COLOR : "#4e79a7"}"/><text x="${Math.min(x + w + 4, width - 160).toFixed(1)}" y="${y + 14}" class="small">${seconds}${built}</text></g>`;
    })
    .join("");
  return `<svg role="img" aria-label="build timeline" viewBox="0 0 ${width} ${steps.length * row + 8}" width="${width}" height="${steps.length * row + 8}">${bars}</svg>`;
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}

function vulnerabilities(v: ReportInput["vulnerabilities"]): string {
  if (!v) return "";
  return `<h2>Vulnerabilities</h2>
<p class="ok">Gate passed at ${esc(v.failOn)} against ${v.advisories} advisories; what the advisories name, and how each was decided:</p>
${table(["component", "advisory", "severity", "fixed in", "decision"], v.rows.map((r) => [r.component, r.advisory, r.severity, r.fixed ?? "", r.decision]))}`;
}

export function renderReport(input: ReportInput): string {
  const h = input.hardening.summary;
  const ran = input.timeline.filter((s) => !s.cached).length;
  const title = `bronze ${input.version} (${input.profile}, ${input.arch})`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}: build report</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1240px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.small { font-size: 11px; } svg text { font-size: 12px; fill: #111; } svg text.small { font-size: 10px; }
.treemaps { display: flex; flex-wrap: wrap; gap: 24px; } figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: 6px; }
.legend { list-style: none; padding: 0; columns: 2; font-size: 12px; } .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; }
table { border-collapse: collapse; font-size: 13px; } th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; } th { background: #f4f4f4; }
.ok { color: #2a7a2a; font-weight: 600; }
</style>
</head>
<body>
<h1>${esc(title)}: build report</h1>
<p>Kernel ${esc(input.kernelRelease)}, ${input.moduleCount} signed module(s); module-signing certificate SHA-256 <code>${esc(input.moduleSigningCertSha256)}</code>.</p>
<h2>Sizes</h2>
${table(["artifact", "bytes", "size"], input.artifacts.map((a) => [a.name, String(a.size), humanBytes(a.size)]))}
<div class="treemaps">
${input.breakdowns.map((b) => treemap(b.title, b.note, b.items)).join("\n")}
</div>
<h2>Build timeline</h2>
<p>${input.timeline.length} steps; ${ran} ran, ${input.timeline.length - ran} came from the cache.</p>
${timeline(input.timeline)}
<h2>Kernel hardening</h2>
<p class="ok">Gate passed (${esc(input.hardening.decisions.join(", ") || "no groups gated")}), rules: ${esc(input.hardening.rules)}.</p>
${table(["checks", "OK", "FAIL", "suppressed by reviewed exceptions", "FAIL in groups not gated", "FAIL gated"], [[String(h.checks), String(h.ok), String(h.fail), String(h.suppressed), String(h.ungatedFail), String(h.gatedFail)]])}
<h3>Suppressed, with their reviewed reasons</h3>
${table(["option", "reason"], input.hardening.suppressed.map((s) => [s.option, s.reason]))}
${vulnerabilities(input.vulnerabilities)}
<h2>Software bill of materials</h2>
${table(["component", "version", "license", "kind", "purl"], input.sbom.map((c) => [c.name, c.version, c.license, c.kind, c.purl ?? ""]))}
</body>
</html>
`;
}
