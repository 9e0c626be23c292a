import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BuildContext } from "../core/context.ts";
import { recipeDigest, sha256 } from "../core/hash.ts";
import type { InitramfsArtifact } from "../initramfs/build.ts";
import type { KernelArtifact } from "../kernel/build.ts";
import { assembleUki } from "./uki.ts";
import type { PcrSigner } from "./pcr.ts";
import { cachedStep } from "../core/step.ts";
import { FILES } from "../core/outputs.ts";

export interface UkiArtifact {
  kind: "uki";
  key: string;
  image: string;
  cmdline: string;
}

export interface UkiInputs {
  stubPath: string;
  kernel: KernelArtifact;
  initramfs: InitramfsArtifact;
  osRelease: string;
  cmdline: string;
  /** measured boot: the key that signs PCR 11's predictions (the entry keeps only its public half's digest) */
  pcrSigner?: PcrSigner;
}

/** The unified kernel image: systemd-stub + .osrel .cmdline .uname .linux .initrd (+ .pcrpkey .pcrsig when PCR 11 is signed). */
export async function buildUki(input: UkiInputs, ctx: BuildContext): Promise<UkiArtifact> {
  const stub = await readFile(input.stubPath);
  const inputs = {
    step: "uki",
    recipe: await recipeDigest(import.meta.url, ...["./uki.ts", "./pe.ts", "./pcr.ts"].map((m) => new URL(m, import.meta.url).href)),
    stub: sha256(stub),
    kernel: input.kernel.identity,
    initramfs: input.initramfs.key,
    osRelease: input.osRelease,
    cmdline: input.cmdline,
    // PKCS#1 v1.5 signatures are deterministic: the public key decides the bytes
    ...(input.pcrSigner ? { pcrPublicKey: sha256(input.pcrSigner.publicKey.export({ type: "spki", format: "der" })) } : {}),
  };
  const produce = async (outDir: string) => {
    const uki = assembleUki({
      stub,
      linux: await readFile(input.kernel.image),
      initrd: await readFile(input.initramfs.image),
      osRelease: input.osRelease,
      cmdline: input.cmdline,
      uname: input.kernel.release,
      pcrSigner: input.pcrSigner,
    });
    await writeFile(join(outDir, FILES.uki), uki);
  };
  return cachedStep(ctx, {
    name: "uki",
    inputs,
    produce,
    artifact: ({ key, dir }) => ({ kind: "uki", key, image: join(dir, FILES.uki), cmdline: input.cmdline }),
  });
}
