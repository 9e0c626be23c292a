import { HOST_ARCH } from "../../src/core/arch.ts";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { createContext } from "../../src/pipeline/context.ts";
import type { PackageArtifact } from "../../src/pkgs/build.ts";
import { buildPackageSet } from "../../src/pkgs/build-set.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// Real libraries from Debian's source packages, each with Debian's patch series, built by the build
// helpers against bronze's musl, then linked into programs that this machine runs.

/** Compiles and links C against the built packages (musl's gcc specs, their headers and static libraries). */
async function linkAgainst(built: ReadonlyMap<string, PackageArtifact>, source: string, libs: string[], dir: string): Promise<string> {
  const musl = built.get("musl")!.dir;
  const specs = join(dir, "musl-gcc.specs");
  await writeFile(specs, (await readFile(join(musl, "usr", "lib", "musl-gcc.specs"), "utf8")).replaceAll("/deps/musl", musl));
  const program = join(dir, "program");
  await writeFile(join(dir, "program.c"), source);
  const flags = [...built.values()].flatMap((a) => ["-isystem", join(a.dir, "usr", "include"), `-L${join(a.dir, "usr", "lib")}`]);
  await execa("gcc", ["-specs", specs, "--static", "-Os", ...flags, "-o", program, join(dir, "program.c"), ...libs.map((l) => `-l${l}`)]);
  return program;
}

test("libcap, libseccomp and yajl build from their Debian sources with Debian's patches, static against musl, and work in programs linked with them", { timeout: 10 * 60_000 }, async () => {
  const ctx = createContext(PROJECT_ROOT, 0);
  const artifacts = await buildPackageSet(["libcap", "libseccomp", "yajl"], HOST_ARCH, ctx);
  const built = new Map<string, PackageArtifact>();
  for (const name of ["musl", "linux-headers", "libcap", "libseccomp", "yajl"]) {
    built.set(name, (await buildPackageSet([name], HOST_ARCH, ctx))[0]!);
  }
  assert.deepEqual(artifacts.map((a) => a.name), ["libcap", "libseccomp", "yajl"]);
  // each records the Debian series it applied, by digest, with what it fixes
  assert.deepEqual(built.get("yajl")?.patches.map((p) => [p.file, p.fixes]), [["yajl_2.1.0-3+deb12u2.debian.tar.xz: debian/patches/series", ["CVE-2017-16516", "CVE-2022-24795", "CVE-2023-33460"]]]);

  // Debian's series brings libseccomp's syscall table up to Linux 6.7: cachestat (6.5) resolves only with it
  const resolver = join(built.get("libseccomp")!.dir, "usr", "bin", "scmp_sys_resolver");
  assert.match((await execa("file", [resolver])).stdout, /statically linked, stripped/);
  assert.equal((await execa(resolver, ["-a", "x86_64", "cachestat"])).stdout.trim(), "451");

  const dir = await tempDir();
  const program = await linkAgainst(
    built,
    `#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>
int main(void)
{
	cap_value_t cap;
	if (cap_from_name("cap_net_bind_service", &cap) != 0)
		return 1;
	char err[128];
	yajl_val doc = yajl_tree_parse("{\\"a\\": [1, 22]}", err, sizeof(err));
	const char *path[] = { "a", NULL };
	yajl_val a = yajl_tree_get(doc, path, yajl_t_array);
	scmp_filter_ctx filter = seccomp_init(SCMP_ACT_ALLOW);
	if (!filter || seccomp_rule_add(filter, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(getppid), 0) != 0 || seccomp_load(filter) != 0)
		return 2;
	long parent = syscall(SYS_getppid); /* musl's getppid() leaves errno alone */
	printf("cap=%d json=%lld getppid=%ld errno=%s\\n", (int)cap, a ? YAJL_GET_INTEGER(a->u.array.values[1]) : -1LL, parent, strerror(errno));
	return 0;
}
`,
    ["seccomp", "cap", "yajl"],
    dir,
  );
  assert.match((await execa("file", [program])).stdout, /statically linked/);
  assert.equal((await execa(program)).stdout, `cap=10 json=22 getppid=-1 errno=${"Operation not permitted"}`);
});

test("util-linux builds libblkid, libmount and mount(8) from its Debian source, static against musl: they probe, parse and mount", { timeout: 10 * 60_000 }, async () => {
  const ctx = createContext(PROJECT_ROOT, 0);
  const built = new Map<string, PackageArtifact>();
  for (const name of ["musl", "linux-headers", "util-linux"]) built.set(name, (await buildPackageSet([name], HOST_ARCH, ctx))[0]!);
  const utilLinux = built.get("util-linux")!;
  assert.deepEqual(utilLinux.patches.map((p) => p.fixes), [["CVE-2024-28085"]]);
  const dir = await tempDir();

  // libblkid finds the file system and label of an ext4 image; libmount parses an fstab
  const image = join(dir, "var.ext4");
  await execa("truncate", ["-s", "8M", image]);
  await execa("mkfs.ext4", ["-q", "-L", "bronze-var", image]);
  const fstab = join(dir, "fstab");
  await writeFile(fstab, "# a comment\nLABEL=bronze-var /var ext4 rw,nosuid,nodev 0 2\n");
  const program = await linkAgainst(
    built,
    `#include <blkid/blkid.h>
#include <libmount/libmount.h>
#include <stdio.h>
int main(int argc, char **argv)
{
	blkid_probe probe = blkid_new_probe_from_filename(argv[1]);
	const char *type = "?", *label = "?";
	if (!probe || blkid_do_safeprobe(probe) != 0)
		return 1;
	blkid_probe_lookup_value(probe, "TYPE", &type, NULL);
	blkid_probe_lookup_value(probe, "LABEL", &label, NULL);
	struct libmnt_table *table = mnt_new_table();
	struct libmnt_iter *next = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs = NULL;
	if (mnt_table_parse_fstab(table, argv[2]) != 0 || mnt_table_next_fs(table, next, &fs) != 0)
		return 2;
	printf("type=%s label=%s | %s on %s (%s) %s\\n", type, label, mnt_fs_get_source(fs), mnt_fs_get_target(fs), mnt_fs_get_fstype(fs), mnt_fs_get_options(fs));
	return 0;
}
`,
    ["mount", "blkid"],
    dir,
  );
  assert.equal((await execa(program, [image, fstab])).stdout, "type=ext4 label=bronze-var | LABEL=bronze-var on /var (ext4) rw,nosuid,nodev");

  // mount(8) itself, in a mount namespace of its own: it mounts, and lists what it mounted
  const mount = join(utilLinux.dir, "bin", "mount");
  assert.match((await execa("file", [mount])).stdout, /statically linked, stripped/);
  assert.match((await execa(mount, ["--version"])).stdout, /^mount from util-linux 2\.38\.1 \(libmount 2\.38\.1/);
  const target = join(dir, "mnt");
  await execa("mkdir", [target]);
  const listed = await execa("unshare", ["--mount", "--propagation", "private", "sh", "-c", `"$0" -t tmpfs -o size=1m,mode=0750 bronze-probe "$1" && "$0" -t tmpfs`, mount, target]);
  assert.match(listed.stdout, new RegExp(`^bronze-probe on ${target} type tmpfs \\(rw,relatime,size=1024k,mode=750\\)$`, "m"));
});
