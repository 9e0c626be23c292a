import { mkdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { writeFileAtomic } from "../core/atomic.ts";
import { projectVersion } from "../core/version.ts";
import { sourceDateEpoch } from "../core/epoch.ts";
import { InputError } from "../core/errors.ts";
import type { CliEnv } from "./commands.ts";

// implementations are imported when a command runs: the CLI starts fast
/** `bronze extension build|validate|sign|verify|inspect`: system extensions in Talos's format, with a content policy and signatures. */
export function registerExtensionCommands(program: Command, { projectRoot }: CliEnv): void {
  const extension = program.command("extension").description("system extensions: build, validate, sign, verify and inspect");

  extension
    .command("build")
    .description("check a directory (manifest.yaml + rootfs/) against the content policy and write it as a reproducible OCI image")
    .argument("<dir>", "the extension's source directory")
    .option("-o, --out <dir>", "where to write <name>/ (OCI layout) and <name>.oci.tar", "_out/extensions")
    .action(async (dir: string, opts: { out: string }) => {
      const { buildExtensionImage } = await import("../extensions/image.ts");
      const { writeLayoutDir } = await import("../oci/layout.ts");
      const image = await buildExtensionImage(resolve(dir), { epoch: await sourceDateEpoch(projectRoot), osVersion: await projectVersion(projectRoot) });
      const name = image.content.manifest.name;
      const out = resolve(opts.out);
      await mkdir(out, { recursive: true });
      await writeLayoutDir(join(out, name), image.files);
      const tar = join(out, `${name}.oci.tar`);
      await writeFileAtomic(tar, image.tar);
      console.log(`extension ${name} ${image.content.manifest.version}: ${image.content.entries.length} entries, index ${image.index.descriptor.digest}`);
      console.log(`  ${join(out, name)}\n  ${tar}`);
    });

  extension
    .command("validate")
    .description("check an extension image (OCI layout directory or tar) against the content policy; exit 1 listing every violation")
    .argument("<source>", "OCI layout directory or tar")
    .option("--os-version <version>", "the bronze version it must be compatible with (default: this tree's)")
    .option("--module-cert <file>", "a kernel's module-signing certificate (DER): every module must verify against it")
    .action(async (source: string, opts: { osVersion?: string; moduleCert?: string }) => {
      const { loadExtension } = await import("../extensions/image.ts");
      const { checkExtension, describeViolation } = await import("../extensions/policy.ts");
      const { signerCertificate } = await import("../kernel/module-sig.ts");
      const content = await loadExtension(source);
      const moduleCert = opts.moduleCert
        ? signerCertificate(
            await readFile(opts.moduleCert).catch(() => {
              throw new InputError(`--module-cert ${opts.moduleCert ?? ""}: cannot read it; give the DER certificate, e.g. _out/default/module-signing.der`);
            }),
          )
        : undefined;
      const violations = checkExtension(content, { osVersion: opts.osVersion ?? (await projectVersion(projectRoot)), moduleCert });
      if (violations.length) {
        for (const v of violations) console.error(describeViolation(v));
        console.error(`extension '${content.manifest.name}': ${violations.length} violation(s) of the content policy`);
        process.exitCode = 1;
        return;
      }
      console.log(`extension '${content.manifest.name}' ${content.manifest.version}: ${content.entries.length} entries, policy ok`);
    });
  registerSignatureCommands(extension, projectRoot);
}

/** `bronze extension sign|verify|inspect`. */
function registerSignatureCommands(extension: Command, projectRoot: string): void {
  extension
    .command("sign")
    .description("sign an extension image (its index digest) as cosign does with a key: ECDSA P-256, stored in the layout under the tag sha256-<hex>.sig")
    .argument("<source>", "OCI layout directory or tar, rewritten in place")
    .requiredOption("--key <file>", "unencrypted ECDSA P-256 private key (PEM)")
    .option("--reference <repository>", "the repository the image is published as (recorded in the payload)", "")
    .action(async (source: string, opts: { key: string; reference: string }) => {
      const { signLayout } = await import("../extensions/signature.ts");
      const { loadSigningKey } = await import("../oci/cosign.ts");
      const key = await loadSigningKey(opts.key);
      const signed = await signLayout(source, key, opts.reference, await sourceDateEpoch(projectRoot));
      console.log(`signed ${signed.digest}; signature stored in ${source} as tag ${signed.tag} (push it beside the image for cosign to find)`);
    });

  extension
    .command("verify")
    .description("check that an extension image carries a signature by one of the given public keys; exit 1 if not")
    .argument("<source>", "OCI layout directory or tar")
    .requiredOption("--key <file...>", "trusted ECDSA P-256 public key(s) (PEM, as cosign.pub)")
    .action(async (source: string, opts: { key: string[] }) => {
      const { verifyLayout } = await import("../extensions/signature.ts");
      const { loadTrustedKey } = await import("../oci/cosign.ts");
      const { loadExtension } = await import("../extensions/image.ts");
      const keys = await Promise.all(opts.key.map((k) => loadTrustedKey(k)));
      const content = await loadExtension(source);
      const verified = await verifyLayout(source, keys, content.manifest.name);
      console.log(`extension '${content.manifest.name}' ${verified.digest}: signature verified with ${opts.key[verified.keyIndex] ?? ""}`);
    });

  extension
    .command("inspect")
    .description("print an extension image's manifest and contents")
    .argument("<source>", "OCI layout directory or tar")
    .action(async (source: string) => {
      const { loadExtension } = await import("../extensions/image.ts");
      const content = await loadExtension(source);
      const { manifest } = content;
      console.log(`name: ${manifest.name}\nversion: ${manifest.version}\nauthor: ${manifest.author}\ndescription: ${manifest.description}\ncompatibility: bronze ${manifest.compatibility}\nimage manifest: ${content.manifestDigest}`);
      for (const e of content.entries) {
        const what = e.type === "symlink" ? ` -> ${e.target ?? ""}` : e.type === "file" ? ` ${e.data?.length ?? 0} B` : "";
        console.log(`  ${e.type.padEnd(7)} ${(e.mode & 0o7777).toString(8).padStart(4, "0")} /${e.path}${what}`);
      }
    });
}
