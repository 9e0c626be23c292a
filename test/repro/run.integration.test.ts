import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { PROJECT_ROOT } from "../helpers/tmp.ts";

/** The lines `bronze repro` prints for one group, after its title. */
function group(output: string, title: string): string[] {
  const start = output.indexOf(`\n${title}`);
  assert.ok(start >= 0, `no group '${title}' in:\n${output}`);
  const rest = output.slice(start + 1).split("\n");
  const end = rest.findIndex((line, i) => i > 0 && !line.startsWith("  "));
  return rest.slice(0, end);
}

// A guard against a hang, not a speed check: the test shares the machine with make test's other lanes and
// their kernel compiles (35 to 44 minutes there; 18 alone, nearly all of it the build from source); it
// starts after the shared image (about 17 minutes) and must end, with its output shown, within CI's 90.
const TIMEOUT_MINUTES = 65;

test("the minimal profile is reproducible: a second build elsewhere, by someone else, matches (kernel up to its ephemeral key)", { timeout: TIMEOUT_MINUTES * 60_000 }, async (t) => {
  const seen: string[] = [];
  const keep = function* (line: string) {
    seen.push(line);
    yield line;
  };
  // the first build is the one the other tests made (this checkout, its cache); the second is from source, in a copy
  const child = execa(join(PROJECT_ROOT, "bin", "bronze"), ["repro", "--profile", "minimal", "--first-cache", join(PROJECT_ROOT, ".cache", "bronze")], {
    cwd: PROJECT_ROOT,
    reject: false,
    all: true,
    stdout: keep,
    stderr: keep,
    // its own process group, so that a timeout stops the builds it runs as well
    detached: true,
    env: { CI: "true" },
  });
  let ended = false;
  const stop = (signal: NodeJS.Signals) => {
    if (!ended && child.pid !== undefined) process.kill(-child.pid, signal);
  };
  // a group of its own does not get a terminal's Ctrl-C: this process passes it on
  const interrupted = (signal: NodeJS.Signals) => {
    stop(signal);
    process.exit(1);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, interrupted);
  // aborted at the timeout, and also once the test is over
  t.signal.addEventListener("abort", () => {
    if (ended) return;
    console.error(`bronze repro was still running after ${TIMEOUT_MINUTES} minutes; its output so far:\n${seen.join("\n")}`);
    stop("SIGTERM");
  });
  const repro = await child;
  ended = true;
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.off(signal, interrupted);
  const output = repro.all ?? "";
  assert.equal(repro.exitCode, 0, output);
  assert.match(output, /reproducible: profile minimal/);

  const inputs = group(output, "input hashes of build B's steps");
  assert.match(inputs[0]!, /: (\d+) of \1 identical/);
  assert.ok(inputs.length === 1, "every input hash agreed, so no line names one");

  const kernel = group(output, "kernel minimal: build A vs build B");
  assert.match(kernel.join("\n"), /equivalent {2}vmlinuz: uncompressed kernel \(\d+ bytes\) identical with the module-signing certificate masked/);
  assert.match(kernel.join("\n"), /equivalent {2}module-signing\.der: each build's own ephemeral certificate/);
  const modules = kernel.filter((line) => /\.ko: identical with signatures stripped/.test(line));
  assert.ok(modules.some((line) => line.includes("bronze_hello.ko")), kernel.join("\n"));

  const published = group(output, "published artifacts: build A vs build C").join("\n");
  for (const artifact of ["rootfs.sqsh", "initramfs.cpio.zst", "uki.efi", "uki.signed.efi", "systemd-boot.signed.efi", "installer.oci.tar", "manifest.json", "vmlinuz"]) {
    assert.match(published, new RegExp(`^ {2}identical {3}${artifact.replaceAll(".", "\\.")}$`, "m"), `${artifact} not compared identical:\n${published}`);
  }
  assert.match(published, /^ {2}identical {3}minimal\.spdx\.json$/m);
  assert.match(published, /^ {2}identical {3}minimal\.cdx\.json$/m);
  const media = group(output, "boot media made from each installer").join("\n");
  assert.match(media, /^ {2}identical {3}disk\.raw$/m, media);
  for (const file of ["image.iso", "disk.raw.zst", "disk.raw.xz", "disk.qcow2", "disk.vhd", "disk.raw.tar.gz", "disk.ova", "pxe/boot.ipxe", "pxe/uki.efi", "pxe/vmlinuz"]) {
    assert.match(media, new RegExp(`^ {2}identical {3}${file.replaceAll(".", "\\.")}$`, "m"), media);
  }
  assert.match(output, /installer index digest: (sha256:[0-9a-f]{64}) \(A\), \1 \(C\), identical/);
});
