import assert from "node:assert/strict";
import { test } from "node:test";
import { linksPage, wizardPage, type WizardOffer } from "../../src/factory/pages.ts";
import { formFields as fields } from "../helpers/html-form.ts";

const offer: WizardOffer = {
  version: "1.2.3",
  arches: ["x86_64"],
  platforms: [
    { name: "minimal", description: "smallest <b>QEMU</b> image", outputs: ["uki", "kernel-initramfs", "installer"] },
    { name: "metal", description: "bare metal", outputs: ["uki", "installer", "iso"] },
  ],
  extensions: [{ name: "hello", version: "0.1.0", description: `a "service" & a module`, choice: "hello" }],
  secureBoot: false,
  outputs: ["uki", "kernel-initramfs", "installer", "iso"],
};

test("each step is a GET form to /ui carrying the choices so far, and the text a profile or extension brings is escaped", () => {
  const first = wizardPage(offer, {});
  assert.match(first, /<form method="get" action="\/ui">/);
  assert.deepEqual(fields(first), [["version", "1.2.3"]]);
  const second = wizardPage(offer, { version: "1.2.3" });
  assert.ok(second.includes("smallest &lt;b&gt;QEMU&lt;/b&gt; image"), "a profile's description is text, not markup");
  assert.deepEqual(fields(second), [["version", "1.2.3"], ["platform", "minimal"], ["arch", "x86_64"]]);
  const third = wizardPage(offer, { version: "1.2.3", platform: "metal", arch: "x86_64" });
  assert.ok(third.includes("a &quot;service&quot; &amp; a module"));
  assert.deepEqual(fields(third), [["version", "1.2.3"], ["platform", "metal"], ["arch", "x86_64"], ["extensions", "chosen"]]);
  const fourth = wizardPage(offer, { version: "1.2.3", platform: "metal", arch: "x86_64", extensions: ["hello"] });
  // the platform's outputs are chosen unless changed
  assert.deepEqual(fields(fourth).filter(([n]) => n !== "args"), [["version", "1.2.3"], ["platform", "metal"], ["arch", "x86_64"], ["extensions", "chosen"], ["ext", "hello"], ["output", "uki"], ["output", "installer"], ["output", "iso"]]);
  for (const html of [first, second, third, fourth]) {
    assert.doesNotMatch(html, /<script|<link|src=|https?:\/\//, "nothing is loaded from anywhere, nothing runs");
  }
});

test("the links page links each file the outputs make, with its digest and signature, the iPXE script only with a kernel and initramfs", () => {
  const id = "a".repeat(64);
  const withKernel = linksPage(offer, { platform: "minimal", arch: "x86_64", extensions: ["hello"], kernelArgs: [], secureBoot: false }, id, "platform: minimal\n", true);
  const hrefs = [...withKernel.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
  const base = `/image/${id}/1.2.3`;
  for (const file of ["uki.efi", "vmlinuz", "initramfs.cpio.zst", "installer.oci.tar"]) {
    for (const suffix of ["", ".sha256", ".sig"]) assert.ok(hrefs.includes(`${base}/${file}${suffix}`), `${file}${suffix} in ${hrefs.join(" ")}`);
  }
  assert.ok(hrefs.includes(`/pxe/${id}/1.2.3/x86_64`));
  assert.ok(!hrefs.some((h) => h?.includes(".signed.")), "signed copies are not linked: the factory signs no boot files for Secure Boot");
  const iso = linksPage(offer, { platform: "metal", arch: "x86_64", extensions: [], kernelArgs: [], outputs: ["iso", "installer"], secureBoot: false }, id, "x: '<y>'\n", false);
  assert.ok(iso.includes(`${base}/image.iso`));
  assert.ok(!iso.includes("/pxe/"));
  assert.ok(iso.includes("x: &#39;&lt;y&gt;&#39;"));
  assert.match(iso, /needs a token/);
});
