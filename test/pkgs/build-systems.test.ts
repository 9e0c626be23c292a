import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { archNamed, HOST_ARCH, type Arch } from "../../src/core/arch.ts";
import { InputError } from "../../src/core/errors.ts";
import { targetEnv } from "../../src/pkgs/build.ts";
import { compilerPrelude, helperSteps, shellWord, STRIP_INSTALLED } from "../../src/pkgs/build-systems.ts";
import { loadPackage } from "../../src/pkgs/schema.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

test("each build system's steps: configure, meson, cmake or make with the options, static, then an install into $OUT that strips programs", () => {
  const autotools = helperSteps({ system: "autotools", options: ["--disable-python", "--with-x=a b"], targets: [] });
  assert.equal(autotools.build, `./configure \${CROSS_COMPILE:+--host=$TARGET_TRIPLET} --prefix=/usr --sysconfdir=/etc --localstatedir=/var --disable-shared --enable-static --disable-python '--with-x=a b'\nmake -j"$JOBS"\n`);
  assert.equal(autotools.install, `make DESTDIR="$OUT" install\n${STRIP_INSTALLED}`);
  assert.match(helperSteps({ system: "meson", options: ["-Dtests=false"], targets: [] }).build, /\nmeson setup _build \$\{CROSS_COMPILE:\+--cross-file \/tmp\/cross\.ini\} --prefix=\/usr --buildtype=minsize --default-library=static --wrap-mode=nodownload -Dtests=false\nninja -C _build/);
  assert.match(helperSteps({ system: "cmake", options: [], targets: [] }).install, /^DESTDIR="\$OUT" cmake --install _build\n/);
  const make = helperSteps({ system: "make", options: ["-C", "libcap", "SHARED=no"], targets: [] });
  assert.equal(make.build, 'make -j"$JOBS" CC="$CC" prefix=/usr -C libcap SHARED=no\n');
  assert.match(make.install, /^make DESTDIR="\$OUT" prefix=\/usr -C libcap SHARED=no install\n/);
  // targets: only those are built, and the package's own steps.install puts them in $OUT
  const only = helperSteps({ system: "cmake", options: [], targets: ["yajl_s"] });
  assert.match(only.build, /cmake --build _build -j "\$JOBS" --target yajl_s\n$/);
  assert.equal(only.install, "");
  assert.equal(shellWord("it's"), `'it'\\''s'`);
});

test("the compiler prelude: musl's gcc, static, each dependency's headers, libraries and pkg-config files where the sandbox shows them", () => {
  const prelude = compilerPrelude(["musl", "linux-headers"]);
  assert.match(prelude, /export CC="\$\{CROSS_COMPILE\}gcc -specs=\/deps\/musl\/usr\/lib\/musl-gcc\.specs --static" AR="\$\{CROSS_COMPILE\}ar" RANLIB="\$\{CROSS_COMPILE\}ranlib"/);
  assert.match(prelude, /CFLAGS="-Os -g0 -ffile-prefix-map=\/build=\. -isystem \/deps\/musl\/usr\/include -isystem \/deps\/linux-headers\/usr\/include"/);
  assert.match(prelude, /LDFLAGS="-L\/deps\/musl\/usr\/lib -L\/deps\/linux-headers\/usr\/lib"/);
  assert.match(prelude, /sed "s#=\/usr#=\$dep\/usr#" "\$pc" > "\/tmp\/pkgconfig\/\$\{pc##\*\/\}"/);
  assert.match(compilerPrelude([]), /export CC="\$\{CROSS_COMPILE\}gcc --static"/);
});

test("for another architecture the same steps cross-build: configure's --host, cmake's target system, a meson cross file, the target's strip", async () => {
  const dir = await tempDir();
  const shell = async (script: string, arch: Arch) => {
    const env = { ...targetEnv(arch), JOBS: "1" };
    const text = script.replaceAll("/tmp/cross.ini", join(dir, "cross.ini"));
    return (await execa("sh", ["-euc", `${compilerPrelude(["musl"]).replace("/tmp/pkgconfig", join(dir, "pc"))}\n${text.split("\n").filter((l) => !/^(ninja|cmake --build|make -j)/.test(l)).join("\n")}`], { env })).stdout;
  };
  const [host, arm] = [HOST_ARCH, archNamed("aarch64")];
  const configure = helperSteps({ system: "autotools", options: [], targets: [] }).build.replace("./configure", "echo ./configure");
  assert.match(await shell(configure, arm), /^\.\/configure --host=aarch64-linux-gnu --prefix=\/usr /m);
  assert.match(await shell(configure, host), /^\.\/configure --prefix=\/usr /m);
  const cmake = helperSteps({ system: "cmake", options: [], targets: [] }).build.replace("cmake -S", "echo cmake -S");
  assert.match(await shell(cmake, arm), /-G Ninja -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 -DCMAKE_INSTALL_PREFIX/);
  const meson = helperSteps({ system: "meson", options: [], targets: [] }).build.replace("meson setup", "echo meson setup");
  assert.match(await shell(meson, arm), /meson setup _build --cross-file \S+ --prefix/);
  const ini = await readFile(join(dir, "cross.ini"), "utf8");
  assert.match(ini, /^c = \['aarch64-linux-gnu-gcc', '-specs=\/deps\/musl\/usr\/lib\/musl-gcc\.specs', '--static', \]$/m);
  assert.match(ini, /^cpu_family = 'aarch64'$/m);
  assert.match(ini, /^strip = 'aarch64-linux-gnu-strip'$/m);
  assert.match(STRIP_INSTALLED, /"\$\{CROSS_COMPILE\}strip" --strip-unneeded/);
});

async function pkg(text: string): Promise<string> {
  const dir = join(await tempDir(), "pkgs", "x");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "pkg.yaml"), `name: x\nversion: "1"\nlicense: MIT\nsourceDateEpoch: 1\n${text}`);
  return join(dir, "pkg.yaml");
}
const refused = async (text: string, message: RegExp) =>
  assert.rejects(loadPackage(await pkg(text), join(PROJECT_ROOT, "kernel")), (e: unknown) => e instanceof InputError && message.test(e.message));

test("a package with a build helper is a few lines: its steps are the helper's, its own prepare before and install lines after", async () => {
  const def = await loadPackage(await pkg("dependencies: [musl]\nbuild:\n  system: autotools\n  options: [--disable-nls]\nsteps:\n  prepare: ./autogen.sh\n  install: rm -rf \"$OUT/usr/share/locale\"\n"));
  assert.deepEqual(def.helper, { system: "autotools", options: ["--disable-nls"], targets: [] });
  assert.ok(def.steps.prepare.startsWith(compilerPrelude(["musl"])) && def.steps.prepare.endsWith("./autogen.sh"));
  assert.ok(def.steps.build.includes("--disable-nls") && def.steps.build.startsWith(compilerPrelude(["musl"])));
  assert.ok(def.steps.install.endsWith(`${STRIP_INSTALLED}rm -rf "$OUT/usr/share/locale"`));
  await refused("build: {system: scons}\n", /pkg\.yaml:5: build system 'scons' is not known; use autotools, meson, cmake, make/);
  await refused("build: {system: make}\nsteps:\n  build: make\n", /pkg\.yaml:7: 'build: make' runs the build; put commands for before it in steps\.prepare/);
  await refused("build: {system: cmake, targets: [a]}\n", /pkg\.yaml:5: with build\.targets the build system's install is not run: give steps\.install/);
  await refused("build: {system: make, options: [\"a\\nb\"]}\n", /an option is one line/);
});

test("`kernel: source` is the tree's kernel pin, and the package's version must be the kernel's", async () => {
  const def = await loadPackage(join(PROJECT_ROOT, "pkgs", "linux-headers", "pkg.yaml"));
  const kernel = await loadPackage(await pkg("sources:\n  - kernel: source\nsteps: {install: 'true'}\n"), join(PROJECT_ROOT, "kernel")).catch((e: unknown) => e);
  assert.ok(kernel instanceof InputError && /version 1 is not the kernel source's 6\.12\.\d+ \(kernel\/source\.yaml\); make it 6\.12\.\d+/.test(kernel.message), String(kernel));
  assert.equal(def.sources[0]?.kind, "host-file");
  await refused("sources:\n  - kernel: headers\nsteps: {install: 'true'}\n", /'sources\.0\.kernel' 'headers' is not valid: 'source'/);
});

test("`only:` unpacks some paths of an archive source (the kernel's headers need a twentieth of its source); each is a plain relative path", async () => {
  const def = await loadPackage(join(PROJECT_ROOT, "pkgs", "linux-headers", "pkg.yaml"));
  const source = def.sources[0];
  assert.ok(source?.kind === "host-file" && source.only?.includes("arch/x86") && source.only.includes("tools/include"), JSON.stringify(source));
  const only = (paths: string) => `sources:\n  - debian: x\n    version: 1-1\n    file: x_1.orig.tar.gz\n    sha256: ${"a".repeat(64)}\n    only: ${paths}\nsteps: {install: 'true'}\n`;
  assert.deepEqual((await loadPackage(await pkg(only("[src, doc/x.txt]")))).sources[0], { kind: "debian", package: "x", version: "1-1", file: "x_1.orig.tar.gz", sha256: "a".repeat(64), only: ["src", "doc/x.txt"] });
  await refused(only("['src/*']"), /pkg\.yaml:10: 'sources\.0\.only\.0' 'src\/\*' is not valid: a path under the archive's top directory \(no wildcards, no '\.\.'\)/);
  await refused(only("[src/../etc]"), /pkg\.yaml:10: 'src\/\.\.\/etc' must not name '\.' or '\.\.'/);
});

test("Debian's patch series of a source is pinned like its tarball, with what it fixes", async () => {
  const def = await loadPackage(join(PROJECT_ROOT, "pkgs", "libcap", "pkg.yaml"));
  const source = def.sources[0];
  assert.ok(source?.kind === "debian" && source.patches);
  assert.equal(source.patches.file, "libcap2_2.66-4+deb12u3.debian.tar.xz");
  assert.ok(source.patches.fixes.includes("CVE-2023-2603"));
  await refused("sources:\n  - debian: x\n    version: 1-1\n    file: x_1.orig.tar.gz\n    sha256: " + "a".repeat(64) + "\n    patches: {file: x.patch, sha256: " + "a".repeat(64) + "}\nsteps: {install: 'true'}\n", /'sources\.0\.patches\.file' 'x\.patch' is not valid: the source package's NAME_VERSION\.debian\.tar\.xz/);
});
