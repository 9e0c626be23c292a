import assert from "node:assert/strict";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { describeOutputs, outputOf, outputWeights } from "../../src/pkgs/outputs.ts";
import { tempDir } from "../helpers/tmp.ts";

test("a package's files are split: programs, shared libraries and data for images; headers, static libraries and the like for dependants", async () => {
  for (const path of ["bin/mount", "usr/bin/crun", "usr/lib/libc.so", "usr/lib/libx.so.1", "usr/share/zoneinfo/UTC", "etc/x.conf"]) assert.equal(outputOf(path), "runtime", path);
  for (const path of ["usr/include/blkid/blkid.h", "usr/lib/libblkid.a", "usr/lib/libmount.la", "usr/lib/crt1.o", "usr/lib/musl-gcc.specs", "usr/lib/pkgconfig/mount.pc", "usr/share/man/man8/mount.8", "usr/share/doc/x/README", "usr/share/info/x.info"]) {
    assert.equal(outputOf(path), "development", path);
  }
  const dir = await tempDir();
  await mkdir(join(dir, "usr", "include"), { recursive: true });
  await mkdir(join(dir, "bin"));
  await writeFile(join(dir, "bin", "tool"), "12345");
  await writeFile(join(dir, "usr", "include", "x.h"), "1234567890");
  await symlink("tool", join(dir, "bin", "alias"));
  const weights = await outputWeights(dir);
  assert.deepEqual(weights, { runtime: { files: 1, bytes: 5 }, development: { files: 1, bytes: 10 } });
  assert.equal(describeOutputs(weights), "runtime 1 file(s) 0.0 KiB, development 1 file(s) 0.0 KiB");
});
