import { InvalidArgumentError, type Command } from "commander";

const UNITS: Record<string, number> = { "": 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 };

/** "512M", "2G", "1073741824": a size in bytes. */
function sizeOption(value: string): number {
  const match = /^(\d+)([KMG]?)(i?B)?$/i.exec(value.trim());
  if (!match) throw new InvalidArgumentError("give a size such as 512M, 2G or a number of bytes");
  return Number(match[1]) * (UNITS[(match[2] ?? "").toUpperCase()] ?? 1);
}

// implementations are imported when a command runs: the CLI starts fast
/** `bronze image disk`: bootable disk images from an installer. */
export function registerImageCommands(program: Command): void {
  const image = program.command("image").description("images made from an installer image");
  image
    .command("disk")
    .description("write a bootable raw GPT disk: an ESP with systemd-boot and the UKI (the Secure Boot signed ones when the installer has them), and a /var partition")
    .requiredOption("--from <installer>", "installer image: an OCI layout directory or tar (e.g. _out/default/installer)")
    .requiredOption("--out <file>", "the raw disk image to write")
    .option("--size <size>", "disk size (e.g. 2G); the /var partition takes what the ESP leaves", sizeOption, 1 << 30)
    .action(async (opts: { from: string; out: string; size: number }) => {
      const { buildDisk, ukiFileName } = await import("../disk/image.ts");
      const disk = await buildDisk({ from: opts.from, out: opts.out, sizeBytes: opts.size });
      console.log(`disk ${disk.out}: ${disk.sizeBytes} bytes, GPT ${disk.diskGuid}, ${disk.content.profile} ${disk.content.version}${disk.content.signed ? " (Secure Boot signed)" : ""}`);
      for (const p of disk.partitions) console.log(`  ${p.label.padEnd(4)} ${p.guid} at ${p.offset}, ${p.size} bytes`);
      console.log(`  ESP: EFI/BOOT/BOOTX64.EFI (systemd-boot), EFI/Linux/${ukiFileName(disk.content.version)}`);
    });
}
