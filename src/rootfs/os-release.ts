export interface OsIdentity {
  version: string;
  variant: string;
}

/** The os-release file of a bronze image (also the UKI's .osrel section). */
export function osRelease({ version, variant }: OsIdentity): string {
  return [
    'NAME="bronze"',
    "ID=bronze",
    `VERSION_ID=${version}`,
    `VERSION="${version} (${variant})"`,
    `VARIANT_ID=${variant}`,
    `PRETTY_NAME="bronze ${version} (${variant})"`,
    "",
  ].join("\n");
}
