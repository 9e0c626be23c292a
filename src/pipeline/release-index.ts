import { join } from "node:path";
import { FILES } from "../core/outputs.ts";
import { installerIndex } from "../oci/installer-index.ts";
import { openLayout } from "../oci/layout-read.ts";
import { writeLayoutDir } from "../oci/layout.ts";

/** Where a build of several architectures publishes the installer index over them. */
export const indexDirName = (profileName: string): string => `${profileName}-index`;

/**
 * Publishes, whole or not at all, the installer index over the installers of one release that `bronze build`
 * wrote for several architectures (their _out directories): the layout and its tar, as for one architecture.
 */
export async function publishInstallerIndex(dir: string, outDirs: readonly string[]): Promise<{ digest: string; architectures: string[] }> {
  const index = await installerIndex(await Promise.all(outDirs.map((out) => openLayout(join(out, FILES.installerLayout)))));
  const layout = index.files.map((file) => ({ path: join(FILES.installerLayout, file.path), data: file.data }));
  await writeLayoutDir(dir, [...layout, { path: FILES.installerTar, data: index.tar }]);
  return { digest: index.index.descriptor.digest, architectures: index.architectures };
}
