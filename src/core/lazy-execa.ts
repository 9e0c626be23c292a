import type { execa } from "execa";

/** execa, loaded on first use: commands that never run a process start without it (it costs ~0.2 s). */
export async function lazyExeca(): Promise<typeof execa> {
  return (await import("execa")).execa;
}
