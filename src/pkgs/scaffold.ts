// `bronze pkg new DEBIAN-SOURCE`: a starting pkg.yaml from what the archive says of a Debian source
// package (its newest version, the orig tarball and its sha256, the patch series, the build system the
// tarball uses, the license and the changelog's time), for the next package someone adds.
import { mkdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../core/atomic.ts";
import { InputError } from "../core/errors.ts";
import { run } from "../core/exec.ts";
import { displayPath } from "../core/paths.ts";
import { fetchSource } from "../sources/fetch.ts";
import { compareDebian } from "../vuln/versions.ts";
import type { BuildSystem } from "./build-systems.ts";

export interface SourceStanza {
  package: string;
  version: string;
  /** file name -> sha256, from Checksums-Sha256 */
  files: Map<string, string>;
}

/** The stanzas of `apt-cache showsrc` output: package, version and each file's sha256. */
export function parseShowsrc(text: string): SourceStanza[] {
  return text
    .split(/\n\s*\n/)
    .map((block) => {
      const field = (name: string) => new RegExp(`^${name}: *(.*)$`, "m").exec(block)?.[1]?.trim();
      const files = new Map<string, string>();
      const sums = /^Checksums-Sha256:\n((?: .*\n?)*)/m.exec(block)?.[1] ?? "";
      for (const m of sums.matchAll(/^ ([0-9a-f]{64}) \d+ (\S+)$/gm)) files.set(m[2] ?? "", m[1] ?? "");
      return { package: field("Package") ?? "", version: field("Version") ?? "", files };
    })
    .filter((s) => s.package && s.version);
}

/** The newest version of the source package, and which of its files are the upstream tarball and the patch series. */
export function newestSource(stanzas: readonly SourceStanza[], name: string): { stanza: SourceStanza; orig: string; debian?: string } {
  const mine = stanzas.filter((s) => s.package === name).sort((a, b) => compareDebian(b.version, a.version));
  const stanza = mine[0];
  if (!stanza) throw new InputError(`Debian has no source package '${name}' (apt-cache showsrc found none); is deb-src enabled? 'make' enables it`);
  const names = [...stanza.files.keys()];
  const orig = names.find((f) => /\.orig\.tar\.(gz|xz|bz2)$/.test(f)) ?? names.find((f) => /\.tar\.(gz|xz|bz2)$/.test(f) && !f.includes(".debian."));
  if (!orig) throw new InputError(`source package ${name} ${stanza.version} has no source tarball; its files: ${names.join(", ")}`);
  const debian = names.find((f) => /\.debian\.tar\.(gz|xz|bz2)$/.test(f));
  return { stanza, orig, ...(debian ? { debian } : {}) };
}

/** The build system of an unpacked tree, from the files at its top (`tar -t` paths, top directory dropped). */
export function detectBuildSystem(paths: readonly string[]): BuildSystem | undefined {
  const top = new Set(paths.map((p) => p.split("/").slice(1).join("/")));
  if (top.has("meson.build")) return "meson";
  if (top.has("CMakeLists.txt")) return "cmake";
  if (top.has("configure")) return "autotools";
  if (top.has("Makefile") || top.has("makefile") || top.has("GNUmakefile")) return "make";
  return undefined;
}

/** The license of debian/copyright's `Files: *` stanza (DEP-5), as SPDX-like text. */
export function copyrightLicense(copyright: string): string | undefined {
  const stanza = copyright.split(/\n\s*\n/).find((b) => /^Files:\s*\*\s*$/m.test(b));
  return stanza ? /^License:\s*(.+)$/m.exec(stanza)?.[1]?.trim() : undefined;
}

/** The time of the changelog's newest entry, as a Unix time. */
export function changelogEpoch(changelog: string): number | undefined {
  const date = /^ -- .*?> {1,2}(.+)$/m.exec(changelog)?.[1];
  const ms = date ? Date.parse(date) : NaN;
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

/** The upstream version of a Debian version (1:2.66-4+deb12u3: 2.66). */
export const upstreamVersion = (debian: string): string => debian.replace(/^\d+:/, "").replace(/-[^-]*$/, "");

const yamlText = (s: string) => (/^[A-Za-z0-9_./+-]+$/.test(s) && !/^[\d.]+$/.test(s) ? s : JSON.stringify(s));

export interface ScaffoldFacts {
  name: string;
  source: string;
  version: string;
  orig: { file: string; sha256: string };
  debian?: { file: string; sha256: string };
  system?: BuildSystem;
  license?: string;
  epoch?: number;
}

/** The pkg.yaml text for these facts; what bronze could not tell is marked for the author to fill in. */
export function scaffoldText(f: ScaffoldFacts): string {
  const lines = [
    `# written by 'bronze pkg new ${f.source}': check each value, then build it with 'bronze pkg build ${f.name}'`,
    `name: ${f.name}`,
    `version: ${yamlText(upstreamVersion(f.version))}`,
    f.license ? `license: ${yamlText(f.license)}` : "license: NOASSERTION # TODO: the SPDX license of debian/copyright",
    `description: ${f.source}, built from Debian's source package against bronze's musl`,
    "sources:",
    `  - debian: ${f.source}`,
    `    version: ${yamlText(f.version)}`,
    `    file: ${f.orig.file}`,
    `    sha256: ${f.orig.sha256}`,
    ...(f.debian ? ["    # Debian's patch series of that version (name what it fixes in fixes: [CVE-...])", "    patches:", `      file: ${f.debian.file}`, `      sha256: ${f.debian.sha256}`] : []),
    "# the C library, and the kernel's headers (linux/*.h) that most software includes",
    "dependencies:",
    "  - musl",
    "  - linux-headers",
    f.epoch ? `# the Debian changelog entry of ${f.version}` : "# TODO: the release time of the source (Unix time)",
    `sourceDateEpoch: ${f.epoch ?? 0}`,
    ...(f.system ? ["build:", `  system: ${f.system}`] : ["# TODO: no configure, meson.build, CMakeLists.txt or Makefile at the top: write steps", "steps:", "  install: |", "    false"]),
  ];
  return `${lines.join("\n")}\n`;
}

/** Looks the source package up, fetches and verifies its tarballs, and writes DIR/NAME/pkg.yaml; refuses to overwrite one. */
export async function scaffoldPackage(source: string, pkgsDir: string, cacheDir: string, logFile: string): Promise<{ file: string; facts: ScaffoldFacts }> {
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(source)) throw new InputError(`'${source}' is not a Debian source package name (lowercase letters, digits, + . -)`);
  // a library's source package often carries its soname's number (libcap2): the package is the library
  const name = source.replace(/^(lib[a-z-]+?)\d+$/, "$1");
  const file = join(pkgsDir, name, "pkg.yaml");
  if (await stat(file).then(() => true, () => false)) throw new InputError(`${displayPath(file)} exists already; remove it or edit it`);
  const { stanza, orig, debian } = newestSource(parseShowsrc(await run("apt-cache", ["showsrc", source])), source);
  const pin = (f: string) => ({ kind: "debian" as const, package: source, version: stanza.version, file: f, sha256: stanza.files.get(f) ?? "" });
  const ctx = { cacheDir, definedIn: `apt-cache showsrc ${source}`, logFile };
  const tarball = await fetchSource(pin(orig), ctx);
  const facts: ScaffoldFacts = { name, source, version: stanza.version, orig: { file: orig, sha256: tarball.digest } };
  const system = detectBuildSystem((await run("tar", ["-tf", tarball.path])).split("\n"));
  if (system) facts.system = system;
  if (debian) {
    const series = await fetchSource(pin(debian), ctx);
    facts.debian = { file: debian, sha256: series.digest };
    const read = (path: string) => run("tar", ["-xOf", series.path, path]).catch(() => "");
    const license = copyrightLicense(await read("debian/copyright"));
    if (license) facts.license = license;
    const epoch = changelogEpoch(await read("debian/changelog"));
    if (epoch) facts.epoch = epoch;
  }
  await mkdir(dirname(file), { recursive: true });
  await writeFileAtomic(file, scaffoldText(facts));
  return { file, facts };
}
