import { type Arch } from "./arches.ts";
/**
 * The vocabulary of kernel-hardening-checker's recommendations as data: checks, compounds,
 * version conditions and the arches a rule applies to. rules.ts holds upstream's rows in
 * it, written by scripts/harden-follow.ts; engine.ts evaluates them.
 */

export type OptionType = "kconfig" | "cmdline" | "sysctl";

/** One option and the value it should have: a literal, "is not set", "is present", "is not off" or "*item*" (in a list). */
export interface OptionCheck {
  kind: "option";
  type: OptionType;
  reason: string;
  decision: string;
  name: string;
  expected: string;
}

/** The kernel is at least this version (only inside a compound). */
export interface VersionCheck {
  kind: "version";
  atLeast: readonly [number, number, number];
}

/** OR: the first passing item decides; AND: every item must pass. The first item names the check. */
export interface CompoundCheck {
  kind: "or" | "and";
  items: readonly [OptionCheck, ...Check[]];
}

export type Check = OptionCheck | VersionCheck | CompoundCheck;

/** A top-level check and the arches it applies to (all, when absent; then also when the arch is unknown). */
export interface Rule {
  check: OptionCheck | CompoundCheck;
  arches?: readonly Arch[];
}

const option =
  (type: OptionType, prefix: string) =>
  (reason: string, decision: string, name: string, expected: string): OptionCheck => ({ kind: "option", type, reason, decision, name: prefix + name, expected });
export const kconfig = option("kconfig", "CONFIG_");
export const cmdline = option("cmdline", "");
export const sysctl = option("sysctl", "");
export const atLeast = (major: number, minor: number, patch: number): VersionCheck => ({ kind: "version", atLeast: [major, minor, patch] });
export const or = (first: OptionCheck, ...rest: Check[]): CompoundCheck => ({ kind: "or", items: [first, ...rest] });
export const and = (first: OptionCheck, ...rest: Check[]): CompoundCheck => ({ kind: "and", items: [first, ...rest] });
export const rule = (check: OptionCheck | CompoundCheck, arches?: readonly Arch[]): Rule => (arches ? { check, arches } : { check });

/** The option a check is about, whose name, type, reason, decision and value it reports: a compound's first. */
export function mainOption(check: OptionCheck | CompoundCheck): OptionCheck {
  return check.kind === "option" ? check : check.items[0];
}
