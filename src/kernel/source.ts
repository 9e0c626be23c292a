import { join } from "node:path";
import { FieldReader, YamlFile } from "../core/yamlfile.ts";
import { SHA256_PATTERN, type SourcePin } from "../sources/pin.ts";

/** kernel/source.yaml: the pinned kernel source. */
export interface KernelSource {
  file: string;
  package: string;
  /** the Debian source package it is built from (the name advisories and purls use) */
  sourcePackage: string;
  debianVersion: string;
  version: string;
  pin: Extract<SourcePin, { kind: "host-file" }>;
  sourceDateEpoch: number;
}

export async function loadKernelSource(kernelDir: string): Promise<KernelSource> {
  const file = join(kernelDir, "source.yaml");
  const yaml = await YamlFile.load(file);
  const f = new FieldReader(yaml);
  const top = f.mapping(yaml.data, []);
  f.onlyKeys(top, [], ["package", "sourcePackage", "debianVersion", "file", "version", "sha256", "sourceDateEpoch"]);
  return {
    file,
    package: f.string(top.package, ["package"]),
    sourcePackage: f.string(top.sourcePackage, ["sourcePackage"], /^[a-z0-9][a-z0-9.+-]+$/, "a Debian source package name, as 'dpkg -s PACKAGE' gives it in Source:"),
    debianVersion: f.string(top.debianVersion, ["debianVersion"]),
    version: f.string(top.version, ["version"], /^\d+\.\d+(\.\d+)?$/, "a kernel version like 6.1.192"),
    pin: {
      kind: "host-file",
      path: f.string(top.file, ["file"], /^\//, "an absolute path"),
      sha256: f.string(top.sha256, ["sha256"], SHA256_PATTERN, "64 lowercase hex digits"),
    },
    sourceDateEpoch: f.integer(top.sourceDateEpoch, ["sourceDateEpoch"]),
  };
}
