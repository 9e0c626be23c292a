/**
 * Every pin against the newest the configured Debian archive offers (apt-cache, as apt's lists hold it):
 * the Debian source packages of pkgs/, the kernel's source package and series, and the systemd-stub the
 * UKIs are made with. The hardening rules follow an upstream that no archive carries: listed, not judged.
 */
import { join } from "node:path";
import { probe } from "../core/exec.ts";
import { UPSTREAM } from "../harden/rules.ts";
import { loadKernelSource } from "../kernel/source.ts";
import { loadPackages } from "../pkgs/graph.ts";
import { compareDebian, compareKernel } from "../vuln/versions.ts";

export interface PinStatus {
  /** what is pinned, and where */
  pin: string;
  pinned: string;
  /** the newest the archive offers; undefined when it offers none */
  newest?: string;
  behind: boolean;
  note?: string;
}

const newestOf = (versions: readonly string[]) => [...versions].sort(compareDebian).at(-1);

/** The versions of a source package the archive's deb-src lists hold. */
async function sourceVersions(name: string): Promise<string[]> {
  const shown = await probe("apt-cache", ["showsrc", name]);
  return [...shown.stdout.matchAll(/^Version: (\S+)$/gm)].map((m) => m[1] as string);
}

/** The versions of a binary package the archive offers. */
async function binaryVersions(name: string): Promise<string[]> {
  const madison = await probe("apt-cache", ["madison", name]);
  return madison.stdout.split("\n").flatMap((line) => {
    const version = line.split("|")[1]?.trim();
    return version ? [version] : [];
  });
}

const status = (pin: string, pinned: string, newest: string | undefined, note?: string): PinStatus => ({
  pin,
  pinned,
  ...(newest ? { newest } : {}),
  behind: newest !== undefined && compareDebian(newest, pinned) > 0,
  ...(note ? { note } : {}),
});

export async function outdatedPins(projectRoot: string): Promise<PinStatus[]> {
  const rows: PinStatus[] = [];
  for (const def of (await loadPackages(join(projectRoot, "pkgs"))).values()) {
    for (const source of def.sources) {
      if (source.kind !== "debian") continue;
      const newest = newestOf(await sourceVersions(source.package));
      rows.push(status(`pkgs/${def.name}: Debian source ${source.package}`, source.version, newest, newest ? undefined : "the archive's deb-src lists offer none (make enables deb-src)"));
    }
  }
  const kernel = await loadKernelSource(join(projectRoot, "kernel"));
  rows.push(status(`kernel/source.yaml: ${kernel.package}`, kernel.debianVersion, newestOf(await binaryVersions(kernel.package))));
  const series = (await probe("apt-cache", ["pkgnames", "linux-source-"])).stdout.split("\n").flatMap((name) => /^linux-source-(\d+\.\d+)$/.exec(name.trim())?.[1] ?? []);
  const pinnedSeries = /^linux-source-(\d+\.\d+)$/.exec(kernel.package)?.[1];
  const newestSeries = [...series].sort(compareKernel).at(-1);
  if (pinnedSeries && newestSeries) {
    const newestPackage = `linux-source-${newestSeries}`;
    const version = newestOf(await binaryVersions(newestPackage));
    rows.push({ pin: "kernel/source.yaml: kernel series", pinned: pinnedSeries, newest: `${newestSeries} (${newestPackage} ${version ?? "?"})`, behind: compareKernel(newestSeries, pinnedSeries) > 0 });
  }
  const stub = (await probe("dpkg-query", ["-W", "-f", "${Version}", "systemd-boot-efi"])).stdout.trim();
  rows.push(status("systemd-stub: systemd-boot-efi (installed)", stub || "not installed", newestOf(await binaryVersions("systemd-boot-efi"))));
  rows.push({ pin: "src/harden/rules.ts: kernel-hardening-checker", pinned: `${UPSTREAM.release} (${UPSTREAM.commit.slice(0, 12)})`, behind: false, note: "upstream is in no archive: compare with its repository when following it" });
  return rows;
}
