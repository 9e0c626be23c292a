import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { changelogEpoch, copyrightLicense, detectBuildSystem, newestSource, parseShowsrc, scaffoldText, upstreamVersion } from "../../src/pkgs/scaffold.ts";
import { loadPackage } from "../../src/pkgs/schema.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

const sum = (c: string) => c.repeat(64);
const SHOWSRC = `Package: libcap2
Version: 1:2.66-4+deb12u2
Checksums-Sha256:
 ${sum("1")} 2236 libcap2_2.66-4+deb12u2.dsc
 ${sum("2")} 181592 libcap2_2.66.orig.tar.xz
 ${sum("3")} 23900 libcap2_2.66-4+deb12u2.debian.tar.xz

Package: libcap2
Version: 1:2.66-4+deb12u3
Build-Depends: gperf
Checksums-Sha256:
 ${sum("4")} 2236 libcap2_2.66-4+deb12u3.dsc
 ${sum("2")} 181592 libcap2_2.66.orig.tar.xz
 ${sum("5")} 23944 libcap2_2.66-4+deb12u3.debian.tar.xz
`;

test("what apt-cache showsrc says: the newest version by Debian's order, its upstream tarball and patch series with their sha256", () => {
  const stanzas = parseShowsrc(SHOWSRC);
  assert.equal(stanzas.length, 2);
  const { stanza, orig, debian } = newestSource(stanzas, "libcap2");
  assert.equal(stanza.version, "1:2.66-4+deb12u3");
  assert.equal(orig, "libcap2_2.66.orig.tar.xz");
  assert.equal(debian, "libcap2_2.66-4+deb12u3.debian.tar.xz");
  assert.equal(stanza.files.get(debian ?? ""), sum("5"));
  assert.throws(() => newestSource(stanzas, "nope"), /Debian has no source package 'nope'/);
  assert.equal(upstreamVersion("1:2.66-4+deb12u3"), "2.66");
  assert.equal(upstreamVersion("2.5.4-1+deb12u1"), "2.5.4");
});

test("the build system from the files at the tarball's top, the license of debian/copyright's Files: *, the changelog's time", () => {
  const tar = (...files: string[]) => files.map((f) => `pkg-1.0/${f}`);
  assert.equal(detectBuildSystem(tar("meson.build", "configure")), "meson");
  assert.equal(detectBuildSystem(tar("CMakeLists.txt", "Makefile")), "cmake");
  assert.equal(detectBuildSystem(tar("configure", "Makefile.in", "src/meson.build")), "autotools");
  assert.equal(detectBuildSystem(tar("Makefile")), "make");
  assert.equal(detectBuildSystem(tar("README")), undefined);
  assert.equal(copyrightLicense("Format: x\n\nFiles: debian/*\nLicense: GPL-2\n\nFiles: *\nCopyright: someone\nLicense: LGPL-2.1+\n"), "LGPL-2.1+");
  assert.equal(changelogEpoch("x (1-1) unstable; urgency=medium\n\n  * a\n\n -- A B <a@b>  Mon, 06 Apr 2026 22:27:39 +0200\n"), 1775507259);
});

test("the pkg.yaml it writes loads as it is", async () => {
  const text = scaffoldText({
    name: "libcap",
    source: "libcap2",
    version: "1:2.66-4+deb12u3",
    orig: { file: "libcap2_2.66.orig.tar.xz", sha256: sum("a") },
    debian: { file: "libcap2_2.66-4+deb12u3.debian.tar.xz", sha256: sum("b") },
    system: "make",
    license: "BSD-3-clause or GPL-2",
    epoch: 1775507259,
  });
  const dir = join(await tempDir(), "libcap");
  await mkdir(dir);
  await writeFile(join(dir, "pkg.yaml"), text);
  const def = await loadPackage(join(dir, "pkg.yaml"), join(PROJECT_ROOT, "kernel"));
  assert.equal(def.version, "2.66");
  assert.deepEqual(def.dependencies, ["musl", "linux-headers"]);
  assert.equal(def.helper?.system, "make");
  assert.equal(def.sourceDateEpoch, 1775507259);
  const source = def.sources[0];
  assert.ok(source?.kind === "debian" && source.version === "1:2.66-4+deb12u3" && source.patches?.sha256 === sum("b"));
});
