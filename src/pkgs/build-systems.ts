// The build helpers of pkg.yaml (`build: {system: autotools|meson|cmake|make, options: [...]}`): the
// steps a typical package of that build system needs, against bronze's musl and the package's
// dependencies, so that its pkg.yaml is a few lines. Pure: definitions in, shell scripts out.

export const BUILD_SYSTEMS = ["autotools", "meson", "cmake", "make"] as const;
export type BuildSystem = (typeof BUILD_SYSTEMS)[number];

export interface BuildHelper {
  system: BuildSystem;
  /** configure, meson or cmake options; for make, variables (NAME=VALUE) given to both make runs */
  options: string[];
  /** build only these targets; the build system's install is then not run (steps.install does it) */
  targets: string[];
}

/** A word for the shell, quoted unless it is plainly safe. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=+,@%-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * What every helper step starts with: the compiler against musl (static, small, paths of the build
 * directory kept out of the output), each dependency's headers and libraries, and its pkg-config files
 * with their prefix moved to where the sandbox shows the dependency (/deps/NAME).
 */
export function compilerPrelude(dependencies: readonly string[]): string {
  const includes = dependencies.map((d) => `-isystem /deps/${d}/usr/include`).join(" ");
  const libs = dependencies.map((d) => `-L/deps/${d}/usr/lib`).join(" ");
  // static in CC itself, spelled --static: libtool takes -static (in CC or LDFLAGS) as its own flag and drops it
  // ${CROSS_COMPILE}: the target's toolchain (empty when it is the host's; see pkgs/build.ts targetEnv)
  const cc = dependencies.includes("musl") ? "${CROSS_COMPILE}gcc -specs=/deps/musl/usr/lib/musl-gcc.specs --static" : "${CROSS_COMPILE}gcc --static";
  return [
    "set -e",
    `export CC="${cc}" AR="\${CROSS_COMPILE}ar" RANLIB="\${CROSS_COMPILE}ranlib"`,
    `export CFLAGS="-Os -g0 -ffile-prefix-map=/build=. ${includes}" LDFLAGS="${libs}"`,
    `export CPPFLAGS="${includes}"`,
    "mkdir -p /tmp/pkgconfig",
    "for pc in /deps/*/usr/lib/pkgconfig/*.pc; do",
    '  [ -e "$pc" ] || continue',
    '  dep=${pc%/usr/lib/pkgconfig/*}',
    '  sed "s#=/usr#=$dep/usr#" "$pc" > "/tmp/pkgconfig/${pc##*/}"',
    "done",
    "export PKG_CONFIG_PATH=/tmp/pkgconfig PKG_CONFIG_LIBDIR=/tmp/pkgconfig",
    "",
  ].join("\n");
}

/** Strips the ELF programs and shared objects an install put in $OUT (symbols and debug data no image needs). */
export const STRIP_INSTALLED = [
  'find "$OUT" -type f \\( -perm -u+x -o -name "*.so*" \\) -exec sh -c \'',
  '  for f; do [ "$(head -c 4 "$f")" = "$(printf "\\177ELF")" ] && "${CROSS_COMPILE}strip" --strip-unneeded "$f"; done; true\' sh {} +',
  "",
].join("\n");

/** The build and install steps of a helper (each to run after compilerPrelude); no install with targets. */
export function helperSteps(helper: BuildHelper): { build: string; install: string } {
  const steps = systemSteps(helper);
  return helper.targets.length ? { build: steps.build, install: "" } : { build: steps.build, install: `${steps.install}${STRIP_INSTALLED}` };
}

/** For a cross build, meson's description of the target machine and its toolchain (CC's words as a list). */
const MESON_CROSS_FILE = [
  'if [ -n "$CROSS_COMPILE" ]; then',
  "  { echo '[binaries]'; printf 'c = [%s]\\n' \"$(printf \"'%s', \" $CC)\"",
  "    echo \"ar = '${CROSS_COMPILE}ar'\"; echo \"strip = '${CROSS_COMPILE}strip'\"; echo \"pkg-config = 'pkg-config'\"",
  "    echo '[host_machine]'; echo \"system = 'linux'\"; echo \"cpu_family = '$TARGET_ARCH'\"; echo \"cpu = '$TARGET_ARCH'\"; echo \"endian = 'little'\"",
  "  } > /tmp/cross.ini",
  "fi",
  "",
].join("\n");

function systemSteps(helper: BuildHelper): { build: string; install: string } {
  const options = helper.options.map(shellWord).join(" ");
  const tail = options ? ` ${options}` : "";
  const targets = helper.targets.map(shellWord).join(" ");
  const only = (flag: string) => (targets ? ` ${flag}${targets}` : "");
  switch (helper.system) {
    case "autotools":
      return {
        build: `./configure \${CROSS_COMPILE:+--host=$TARGET_TRIPLET} --prefix=/usr --sysconfdir=/etc --localstatedir=/var --disable-shared --enable-static${tail}\nmake -j"$JOBS"${only("")}\n`,
        install: 'make DESTDIR="$OUT" install\n',
      };
    case "meson":
      return {
        build: `${MESON_CROSS_FILE}meson setup _build \${CROSS_COMPILE:+--cross-file /tmp/cross.ini} --prefix=/usr --buildtype=minsize --default-library=static --wrap-mode=nodownload${tail}\nninja -C _build -j "$JOBS"${only("")}\n`,
        install: 'DESTDIR="$OUT" meson install -C _build --no-rebuild\n',
      };
    case "cmake":
      return {
        build: `cmake -S . -B _build -G Ninja \${CROSS_COMPILE:+-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=$TARGET_ARCH} -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=MinSizeRel -DBUILD_SHARED_LIBS=OFF${tail}\ncmake --build _build -j "$JOBS"${only("--target ")}\n`,
        install: 'DESTDIR="$OUT" cmake --install _build\n',
      };
    case "make":
      return {
        build: `make -j"$JOBS" CC="$CC" prefix=/usr${tail}${only("")}\n`,
        install: `make DESTDIR="$OUT" prefix=/usr${tail} install\n`,
      };
  }
}
