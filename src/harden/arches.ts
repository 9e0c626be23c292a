/** kernel-hardening-checker's architectures: its rules say which each check is for (core/arch.ts maps bronze's). */
export const ARCHES = ["X86_64", "X86_32", "ARM64", "ARM", "RISCV"] as const;
export type Arch = (typeof ARCHES)[number];
