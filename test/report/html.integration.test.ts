import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { execa } from "execa";
import { loadKernelSource } from "../../src/kernel/source.ts";
import { TREEMAP_COLORS } from "../../src/report/html.ts";
import { bronze } from "../helpers/cli.ts";
import { decodePng } from "../helpers/png.ts";
import { PROJECT_ROOT } from "../helpers/tmp.ts";

// _out/<profile>/report.html: checked as text, then rendered by a real browser (Debian's
// Chromium, headless): no console message, and a screenshot that shows the treemaps.

const OUT = join(PROJECT_ROOT, "_out", "minimal");
let dir = "";

before(async () => {
  const built = await bronze(["build", "--profile", "minimal"]);
  assert.equal(built.exitCode, 0, String(built.all));
  dir = await mkdtemp(join(tmpdir(), "bronze-report-test-"));
});
after(() => rm(dir, { recursive: true, force: true }));

/** Renders a page headless; returns the browser's console lines and the screenshot's pixels. */
async function render(page: string): Promise<{ console: string[]; png: ReturnType<typeof decodePng> }> {
  const shot = join(dir, "shot.png");
  const result = await execa(
    "chromium",
    ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0", "--window-size=1280,1400", `--screenshot=${shot}`, `file://${page}`],
    { reject: false, all: true, env: { HOME: dir } },
  );
  assert.equal(result.exitCode, 0, result.all);
  const consoleLines = String(result.all).split("\n").filter((l) => l.includes(":CONSOLE"));
  return { console: consoleLines, png: decodePng(await readFile(shot)) };
}

function colorCounts(png: ReturnType<typeof decodePng>): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < png.rgba.length; i += 4) {
    const hex = `#${png.rgba.subarray(i, i + 3).toString("hex")}`;
    counts.set(hex, (counts.get(hex) ?? 0) + 1);
  }
  return counts;
}

test("report.html is one self-contained page with the sizes, the build timeline, the hardening summary and the SBOM", async () => {
  const html = await readFile(join(OUT, "report.html"), "utf8");
  assert.doesNotMatch(html, /<script|<link|\bsrc=|https?:\/\//, "nothing to fetch, nothing to run");
  const manifest = JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as { version: string; artifacts: { name: string; size: number }[]; hardening: { checks: number; ok: number; fail: number; suppressed: number } };
  assert.match(html, new RegExp(`<title>bronze ${manifest.version.replace(/\./g, "\\.")} \\(minimal, x86_64\\): build report</title>`));
  for (const a of manifest.artifacts.filter((x) => x.name !== "report.html")) assert.ok(html.includes(`<td>${a.name}</td><td>${a.size}</td>`), `${a.name} with its size`);
  for (const label of ["kernel (.linux)", "initramfs (.initrd)", "systemd-stub", "/rootfs.sqsh", "/init", "musl", "e2fsprogs", "kernel modules"]) assert.ok(html.includes(`${label} — `), `treemap cell ${label}`);
  for (const stepName of ["package musl 1.2.3", `kernel ${(await loadKernelSource(join(PROJECT_ROOT, "kernel"))).version} (profile minimal)`, "rootfs.sqsh", "initramfs", "hardening gate", "UKI"]) assert.ok(html.includes(stepName), `timeline step ${stepName}`);
  const h = manifest.hardening;
  assert.ok(html.includes(`<td>${h.checks}</td><td>${h.ok}</td><td>${h.fail}</td><td>${h.suppressed}</td>`), "the hardening summary of this build");
  const spdx = JSON.parse(await readFile(join(OUT, "minimal.spdx.json"), "utf8")) as { packages: { name: string; versionInfo?: string }[] };
  for (const p of spdx.packages) assert.ok(html.includes(`<td>${p.name}</td>`), `SBOM component ${p.name}`);
});

test("headless Chromium renders report.html without a console message, and its screenshot shows the treemaps", async () => {
  // the check can fail: a page with a script error is caught
  const broken = join(dir, "broken.html");
  await writeFile(broken, "<!DOCTYPE html><title>x</title><script>notDefined()</script>");
  assert.match((await render(broken)).console.join("\n"), /Uncaught ReferenceError: notDefined is not defined/);

  const { console: messages, png } = await render(join(OUT, "report.html"));
  assert.deepEqual(messages, [], "no console messages");
  assert.equal(png.width, 1280);
  const counts = colorCounts(png);
  // the three treemaps are 560x300 each, drawn in the palette: large areas of at least three colours
  const painted = TREEMAP_COLORS.map((c) => counts.get(c) ?? 0);
  assert.ok(painted.filter((n) => n > 2000).length >= 3, `treemap colours in the screenshot: ${painted.join(", ")}`);
  assert.ok((painted[0] ?? 0) > 50_000, "the largest cells (kernel, rootfs.sqsh, musl) are drawn");
});
