import { InvalidArgumentError } from "commander";

/** A size option: bytes, or with K, M or G (binary units; "MiB" and "MB" read the same). */
export function sizeOption(value: string): number {
  const m = /^(\d+)([KMG]i?B?)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError("give a size such as 512M, 2G, 5MiB or a number of bytes");
  const unit = (m[2] ?? "").toUpperCase()[0];
  return Number(m[1]) * (unit === "K" ? 1024 : unit === "M" ? 1024 ** 2 : unit === "G" ? 1024 ** 3 : 1);
}
