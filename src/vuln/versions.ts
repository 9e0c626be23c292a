/**
 * Version orders an advisory's ranges are written in: Debian's (deb-version(7): epoch, upstream version,
 * revision; `~` before anything, even the end), the Linux kernel's (dotted numbers: 6.1.192 < 6.12), and
 * SEMVER 2.0 (pre-releases before the release, build metadata ignored).
 */
import { InputError } from "../core/errors.ts";

const order = (c: string | undefined): number => {
  if (c === undefined) return 0;
  if (c === "~") return -1;
  if (/[0-9]/.test(c)) return 0;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
};

/** dpkg's comparison of one part (upstream or revision): non-digit runs by `order`, digit runs as numbers. */
function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !/[0-9]/.test(a[i] as string)) || (j < b.length && !/[0-9]/.test(b[j] as string))) {
      const ac = order(i < a.length && !/[0-9]/.test(a[i] as string) ? a[i] : undefined);
      const bc = order(j < b.length && !/[0-9]/.test(b[j] as string) ? b[j] : undefined);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (a[i] === "0") i++;
    while (b[j] === "0") j++;
    while (i < a.length && /[0-9]/.test(a[i] as string) && j < b.length && /[0-9]/.test(b[j] as string)) {
      if (!firstDiff) firstDiff = (a.charCodeAt(i) as number) - (b.charCodeAt(j) as number);
      i++;
      j++;
    }
    if (i < a.length && /[0-9]/.test(a[i] as string)) return 1;
    if (j < b.length && /[0-9]/.test(b[j] as string)) return -1;
    if (firstDiff) return firstDiff;
  }
  return 0;
}

interface DebianVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

const DEBIAN = /^(?:(\d+):)?([0-9][A-Za-z0-9.+~:-]*?)(?:-([A-Za-z0-9.+~]+))?$/;

export function parseDebianVersion(text: string): DebianVersion {
  const match = DEBIAN.exec(text.trim());
  if (!match) throw new InputError(`'${text}' is not a Debian version ([epoch:]upstream[-revision], the upstream part starting with a digit)`);
  const [, epoch, upstream, revision] = match;
  return { epoch: Number(epoch ?? 0), upstream: upstream ?? "", revision: revision ?? "" };
}

/** <0, 0 or >0 as `a` sorts before, with or after `b`, as dpkg --compare-versions says. */
export function compareDebian(a: string, b: string): number {
  const [x, y] = [parseDebianVersion(a), parseDebianVersion(b)];
  if (x.epoch !== y.epoch) return x.epoch - y.epoch;
  return compareFragment(x.upstream, y.upstream) || compareFragment(x.revision, y.revision);
}

/** The kernel's order: dotted numbers, a missing part counting as 0 (a "-rc" suffix before the release). */
export function compareKernel(a: string, b: string): number {
  const parts = (v: string) => {
    const match = /^(\d+(?:\.\d+)*)(?:-rc(\d+))?/.exec(v.trim());
    if (!match) throw new InputError(`'${v}' is not a Linux version (such as 6.1.192)`);
    return { numbers: (match[1] as string).split(".").map(Number), rc: match[2] === undefined ? Infinity : Number(match[2]) };
  };
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < Math.max(x.numbers.length, y.numbers.length); i++) {
    const d = (x.numbers[i] ?? 0) - (y.numbers[i] ?? 0);
    if (d) return d;
  }
  return x.rc === y.rc ? 0 : x.rc < y.rc ? -1 : 1;
}

const SEMVER = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** SEMVER 2.0 precedence. */
export function compareSemver(a: string, b: string): number {
  const parse = (v: string) => {
    const match = SEMVER.exec(v.trim());
    if (!match) throw new InputError(`'${v}' is not a semantic version (MAJOR.MINOR.PATCH[-pre][+build])`);
    return { core: [Number(match[1]), Number(match[2]), Number(match[3])], pre: match[4]?.split(".") ?? [] };
  };
  const [x, y] = [parse(a), parse(b)];
  for (let i = 0; i < 3; i++) {
    const d = (x.core[i] as number) - (y.core[i] as number);
    if (d) return d;
  }
  if (!x.pre.length || !y.pre.length) return y.pre.length - x.pre.length;
  for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i++) {
    const [p, q] = [x.pre[i], y.pre[i]];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    const [pn, qn] = [/^\d+$/.test(p), /^\d+$/.test(q)];
    if (pn && qn) {
      const d = Number(p) - Number(q);
      if (d) return d;
    } else if (pn !== qn) {
      return pn ? -1 : 1;
    } else if (p !== q) {
      return p < q ? -1 : 1;
    }
  }
  return 0;
}
