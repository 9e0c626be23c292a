import assert from "node:assert/strict";
import { lstat, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Spec, Validation } from "@cyclonedx/cyclonedx-library";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS } from "../../src/boot/qemu.ts";
import { SETTLED_MS } from "../../src/core/fingerprint.ts";
import { sha256 } from "../../src/core/hash.ts";
import { findPrivateKeys } from "../../src/kernel/key-scan.ts";
import { describeVerdict, verifyModuleTree } from "../../src/kernel/module-sig.ts";
import { UPSTREAM } from "../../src/harden/rules.ts";
import { readUkiSections } from "../../src/uki/uki.ts";
import { bronze } from "../helpers/cli.ts";
import { fileIdentities } from "../helpers/identities.ts";
import { leftoverKeyDirs } from "../helpers/keys.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// The walking skeleton end to end: real package builds, a real kernel build,
// mksquashfs, our cpio and PE writers, and QEMU boots of the result.
const OUT = join(PROJECT_ROOT, "_out", "minimal");
const CACHE = join(PROJECT_ROOT, ".cache", "bronze");
const WORK = join(PROJECT_ROOT, "_work");
let firstBuild = "";

interface Manifest {
  version: string;
  sourceDateEpoch: number;
  cmdline: string;
  kernel: { release: string; moduleCount: number; moduleSigningCertSha256: string };
  artifacts: { name: string; size: number; sha256: string }[];
  installer: { layout: string; tag: string; indexDigest: string; manifests: { architecture: string; digest: string }[] };
  hardening: { rules: string; decisions: string[]; checks: number; ok: number; fail: number; suppressed: number; gatedFail: number; ungatedFail: number; report: string };
}
const manifest = async (): Promise<Manifest> => JSON.parse(await readFile(join(OUT, "manifest.json"), "utf8")) as Manifest;

before(async () => {
  const result = await bronze(["build", "--profile", "minimal"]);
  firstBuild = String(result.all);
  assert.equal(result.exitCode, 0, firstBuild);
});

test("the build prints every artifact with its size", () => {
  for (const name of ["rootfs.sqsh", "initramfs.cpio.zst", "vmlinuz", "uki.efi"]) {
    assert.match(firstBuild, new RegExp(`_out/minimal/${name.replace(".", "\\.")}\\s+[\\d.]+ (B|KiB|MiB)`));
  }
});

test("the hardening gate passed on the kernel config, the UKI's command line and init's sysctls; hardening.json lists every verdict and each suppressed one with its reason", async () => {
  const { hardening, cmdline } = await manifest();
  assert.equal(hardening.rules, `${UPSTREAM.project} ${UPSTREAM.release}`);
  assert.deepEqual(hardening.decisions, ["defconfig", "kspp"]);
  assert.equal(hardening.gatedFail, 0);
  assert.equal(hardening.checks, hardening.ok + hardening.fail);
  assert.equal(hardening.fail, hardening.suppressed + hardening.ungatedFail);
  const report = JSON.parse(await readFile(join(OUT, hardening.report), "utf8")) as {
    results: { option_name: string; type: string; decision: string; check_result: string; check_result_bool: boolean }[];
    suppressed: { option_name: string; reason: string; exception: string }[];
  };
  assert.equal(report.results.length, hardening.checks);
  assert.deepEqual(new Set(report.results.map((r) => r.type)), new Set(["kconfig", "cmdline", "sysctl"]));
  for (const s of report.suppressed) assert.match(s.exception, /^kernel\/hardening\/exceptions\.yaml:\d+$/, s.option_name);
  // what the UKI carries is what was checked
  assert.ok(report.results.some((r) => r.option_name === "mitigations" && r.check_result === "OK"), cmdline);
  assert.ok(report.results.some((r) => r.option_name === "kernel.modules_disabled" && r.check_result === "OK"));
  assert.ok(report.results.some((r) => r.option_name === "CONFIG_MODULE_SIG_FORCE" && r.check_result_bool));
});

test("a second build with nothing changed runs no build step, gives the same installer digest and rewrites nothing in _out/", async () => {
  const before = (await manifest()).installer;
  const files = await fileIdentities(OUT);
  const result = await bronze(["build", "--profile", "minimal"]);
  assert.equal(result.exitCode, 0, String(result.all));
  assert.match(String(result.stdout), /0 build step\(s\) ran \(everything from cache\)/);
  assert.deepEqual((await manifest()).installer, before);
  assert.deepEqual(await fileIdentities(OUT), files, "the same files, the same inodes and modification times");
});

test("a build after a settled one that changed nothing is answered by its stamp, rewriting nothing; a changed output brings the whole build back", async () => {
  // what the builds before made settles (core/fingerprint.ts)
  await sleep(SETTLED_MS + 500);
  const settled = await bronze(["build", "--profile", "minimal"]);
  assert.equal(settled.exitCode, 0, String(settled.all));
  const files = await fileIdentities(OUT);
  const answered = await bronze(["build", "--profile", "minimal"]);
  assert.equal(answered.exitCode, 0, String(answered.all));
  assert.match(String(answered.stdout), /profile 'minimal' is up to date: .* 0 build step\(s\) ran \(everything from cache\)/);
  assert.doesNotMatch(String(answered.stdout), /❯|✔/, "no step of the pipeline was even looked at");
  for (const name of ["rootfs.sqsh", "uki.efi"]) assert.match(String(answered.stdout), new RegExp(`_out/minimal/${name.replace(".", "\\.")}\\s+[\\d.]+ (B|KiB|MiB)`));
  assert.deepEqual(await fileIdentities(OUT), files);

  const hardening = join(OUT, "hardening.json");
  const text = await readFile(hardening, "utf8");
  await writeFile(hardening, text.replace("kernel-hardening-checker", "kernel-hardening-checkeR"));
  const again = await bronze(["build", "--profile", "minimal"]);
  assert.equal(again.exitCode, 0, String(again.all));
  assert.match(String(again.stdout), /built profile 'minimal' in/, "the whole build ran");
  assert.equal(await readFile(hardening, "utf8"), text, "and published the file again");
});

test("the installer image: skopeo reads the layout and its tar, umoci unpacks usr/install/amd64 with the boot artifacts", async () => {
  const { installer, sourceDateEpoch } = await manifest();
  for (const source of [`oci:${join(OUT, "installer")}:${installer.tag}`, `oci-archive:${join(OUT, "installer.oci.tar")}:${installer.tag}`]) {
    const raw = JSON.parse((await execa("skopeo", ["inspect", "--raw", source])).stdout) as { manifests: { digest: string; platform: { architecture: string } }[] };
    assert.deepEqual(raw.manifests.map((m) => ({ architecture: m.platform.architecture, digest: m.digest })), installer.manifests);
    const inspected = JSON.parse((await execa("skopeo", ["inspect", source])).stdout) as { Digest: string; Created: string; Labels: Record<string, string> };
    assert.equal(inspected.Digest, installer.indexDigest);
    assert.equal(inspected.Created, new Date(sourceDateEpoch * 1000).toISOString().replace(".000Z", "Z"), "created is SOURCE_DATE_EPOCH");
    assert.equal(inspected.Labels["org.opencontainers.image.version"], installer.tag);
  }
  const work = await tempDir();
  await execa("umoci", ["unpack", "--image", `${join(OUT, "installer")}:${installer.tag}`, join(work, "bundle")]);
  const dir = join(work, "bundle", "rootfs", "usr", "install", "amd64");
  assert.deepEqual((await readdir(dir)).sort(), ["hardening.json", "initramfs.cpio.zst", "manifest.json", "minimal.cdx.json", "minimal.spdx.json", "systemd-boot.efi", "uki.efi", "vmlinuz"]);
  for (const name of ["uki.efi", "vmlinuz", "initramfs.cpio.zst"]) assert.deepEqual(await readFile(join(dir, name)), await readFile(join(OUT, name)), name);
  const inner = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Manifest;
  assert.equal(inner.artifacts.find((a) => a.name === "uki.efi")?.sha256, sha256(await readFile(join(OUT, "uki.efi"))));

  // the layer: sorted, root-owned, no user names, every mtime the epoch
  const layers = (await readdir(join(OUT, "installer", "blobs", "sha256"))).map((d) => join(OUT, "installer", "blobs", "sha256", d));
  const listings = await Promise.all(layers.map((l) => execa("tar", ["--numeric-owner", "--full-time", "-tvzf", l], { reject: false, env: { TZ: "UTC" } })));
  const layer = listings.find((l) => l.exitCode === 0 && l.stdout.includes("usr/install/amd64/uki.efi"));
  assert.ok(layer, "a gzip layer holds the installer files");
  const lines = layer.stdout.trim().split("\n");
  const stamp = new Date(sourceDateEpoch * 1000).toISOString().replace("T", " ").replace(".000Z", "");
  for (const line of lines) {
    assert.match(line, /^[-d]\S+ 0\/0 /, line);
    assert.ok(line.includes(stamp), `${line}: mtime ${stamp}`);
  }
  const names = lines.map((l) => l.split(" ").at(-1) ?? "");
  assert.deepEqual(names, [...names].sort());
});

test("the build prints the rootfs's executables: a handful (Talos's base has 12), the container runtime among them", () => {
  const line = /^rootfs: (\d+) executable\(s\): (.*)$/m.exec(firstBuild);
  assert.ok(line, firstBuild);
  const paths = (line[2] ?? "").split(", ");
  assert.equal(Number(line[1]), paths.length);
  assert.ok(paths.length <= 12, `${paths.length} executables: ${paths.join(" ")}`);
  for (const path of ["/usr/sbin/init", "/usr/sbin/mke2fs", "/usr/bin/crun"]) assert.ok(paths.includes(path), `${path} in ${line[2]}`);
});

test("rootfs.sqsh holds the musl userland, init, os-release and the signed modules, owned by root", async () => {
  const { kernel, sourceDateEpoch } = await manifest();
  const listing = (await execa("unsquashfs", ["-lln", "-d", "", join(OUT, "rootfs.sqsh")], { env: { TZ: "UTC" } })).stdout;
  const paths = new Set(listing.split("\n").map((l) => l.replace(/^.*\d\d:\d\d /, "").replace(/ -> .*$/, "")));
  for (const path of ["/usr/sbin/init", "/usr/lib/libc.so", "/usr/lib/ld-musl-x86_64.so.1", "/usr/lib/os-release", "/usr/lib/sysctl.d/50-bronze.conf", "/etc/os-release", "/sbin", "/var", "/run", "/system", "/tmp"]) {
    assert.ok(paths.has(path), `${path} in rootfs`);
  }
  assert.ok([...paths].some((p) => p.startsWith(`/usr/lib/modules/${kernel.release}/kernel/`) && p.endsWith(".ko")));
  assert.ok(![...paths].some((p) => p.startsWith("/usr/include") || p.endsWith(".a")), "no development files");
  for (const line of listing.split("\n").filter((l) => l.startsWith("-") || l.startsWith("d"))) {
    assert.match(line, /^\S+ 0\/0 /, `owned by root: ${line}`);
  }
  const date = new Date(sourceDateEpoch * 1000).toISOString().slice(0, 16).replace("T", " ");
  assert.ok(listing.includes(date), `mtimes are SOURCE_DATE_EPOCH (${date})`);
});

test("the SBOM in the rootfs lists every file with its checksum and the component that installed it; CycloneDX validates", async () => {
  const work = await tempDir();
  const root = join(work, "root");
  await execa("unsquashfs", ["-q", "-d", root, join(OUT, "rootfs.sqsh")]);
  const spdx = JSON.parse(await readFile(join(root, "usr/share/spdx/minimal.spdx.json"), "utf8")) as {
    files: { SPDXID: string; fileName: string; checksums: { algorithm: string; checksumValue: string }[] }[];
    relationships: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[];
  };
  assert.deepEqual(await readFile(join(root, "usr/share/spdx/minimal.spdx.json")), await readFile(join(OUT, "minimal.spdx.json")));
  const listed = new Map(spdx.files.map((f) => [f.fileName.slice(2), f]));
  const owner = (path: string) => {
    const id = listed.get(path)?.SPDXID;
    return spdx.relationships.find((r) => r.relationshipType === "CONTAINS" && r.relatedSpdxElement === id)?.spdxElementId;
  };
  const onDisk = (await execa("find", [".", "-not", "-type", "d"], { cwd: root })).stdout.split("\n").map((p) => p.slice(2)).sort();
  const described = onDisk.filter((p) => !p.startsWith("usr/share/spdx/"));
  assert.deepEqual([...listed.keys()].sort(), described, "every file but the SBOMs themselves, and nothing else");
  for (const path of described) {
    const info = await lstat(join(root, path));
    const content = info.isSymbolicLink() ? Buffer.from(await readlink(join(root, path))) : await readFile(join(root, path));
    assert.equal(listed.get(path)?.checksums.find((c) => c.algorithm === "SHA256")?.checksumValue, sha256(content), path);
    assert.ok(owner(path), `${path} has an owner`);
  }
  assert.equal(owner("usr/lib/libc.so"), "SPDXRef-Package-package-musl");
  assert.equal(owner("usr/sbin/init"), "SPDXRef-Package-package-init");
  assert.equal(owner("usr/lib/os-release"), "SPDXRef-Package-image");
  assert.ok(described.filter((p) => p.endsWith(".ko")).every((p) => owner(p) === "SPDXRef-Package-kernel-linux"));
  assert.equal(owner("usr/bin/crun"), "SPDXRef-Package-package-crun");
  // the libraries linked into crun are components of their own, with their Debian purls, linked statically
  const staticLinks = spdx.relationships.filter((r) => r.relationshipType === "STATIC_LINK").map((r) => `${r.spdxElementId} ${r.relatedSpdxElement}`).sort();
  assert.deepEqual(staticLinks, ["argp", "libcap", "libseccomp", "yajl"].map((l) => `SPDXRef-Package-package-crun SPDXRef-Package-package-${l}`));
  const cdxText = await readFile(join(OUT, "minimal.cdx.json"), "utf8");
  assert.equal(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(cdxText), null);
  const cdx = JSON.parse(cdxText) as { components: { "bom-ref": string; purl?: string; licenses?: unknown[] }[]; dependencies: { ref: string; dependsOn?: string[] }[] };
  assert.equal(cdx.components.find((c) => c["bom-ref"] === "package-libseccomp")?.purl, "pkg:deb/debian/libseccomp@2.5.4-1%2Bdeb12u1?arch=source");
  assert.deepEqual(cdx.dependencies.find((d) => d.ref === "package-crun")?.dependsOn?.sort(), ["package-argp", "package-libcap", "package-libseccomp", "package-yajl"]);
});

test("every shipped module's signature verifies against the certificate built into the kernel", async () => {
  const { kernel } = await manifest();
  const dir = join(WORK, "check-modules");
  await rm(dir, { recursive: true, force: true });
  await execa("unsquashfs", ["-q", "-d", dir, join(OUT, "rootfs.sqsh"), `usr/lib/modules/${kernel.release}`]);
  const checks = await verifyModuleTree(dir, await readFile(join(OUT, "module-signing.der")));
  await rm(dir, { recursive: true, force: true });
  assert.equal(checks.length, kernel.moduleCount);
  assert.ok(checks.length > 0);
  for (const { path, verdict } of checks) assert.equal(verdict.status, "ok", `${path}: ${describeVerdict(verdict)}`);
  assert.equal(sha256(await readFile(join(OUT, "module-signing.der"))), kernel.moduleSigningCertSha256);
});

test("the initramfs is a zstd newc cpio of exactly /init and /rootfs.sqsh", async () => {
  const cpio = (await execa("zstd", ["-dc", join(OUT, "initramfs.cpio.zst")], { encoding: "buffer" })).stdout;
  const names = (await execa("cpio", ["-it", "--quiet"], { input: cpio })).stdout.trim().split("\n");
  assert.deepEqual(names, ["init", "rootfs.sqsh"]);
  const extracted = (await execa("cpio", ["-i", "--quiet", "--to-stdout", "rootfs.sqsh"], { input: cpio, encoding: "buffer" })).stdout;
  assert.ok(Buffer.from(extracted).equals(await readFile(join(OUT, "rootfs.sqsh"))));
});

test("the UKI holds the stub's .sbat and our sections, which objdump reads back", async () => {
  const uki = await readFile(join(OUT, "uki.efi"));
  const { cmdline, kernel } = await manifest();
  const headers = (await execa("objdump", ["-h", join(OUT, "uki.efi")])).stdout;
  for (const name of [".sbat", ".osrel", ".cmdline", ".uname", ".linux", ".initrd"]) {
    assert.match(headers, new RegExp(`\\s${name.replace(".", "\\.")}\\s`), name);
  }
  const sections = new Map(readUkiSections(uki).map((s) => [s.name, Buffer.from(s.data)]));
  assert.ok(sections.get(".linux")?.subarray(0, (await readFile(join(OUT, "vmlinuz"))).length).equals(await readFile(join(OUT, "vmlinuz"))));
  assert.ok(sections.get(".initrd")?.subarray(0, (await readFile(join(OUT, "initramfs.cpio.zst"))).length).equals(await readFile(join(OUT, "initramfs.cpio.zst"))));
  assert.equal(sections.get(".cmdline")?.toString("utf8").replace(/\0+$/, ""), cmdline);
  assert.equal(sections.get(".uname")?.toString("utf8").replace(/\0+$/, ""), kernel.release);
  assert.match(sections.get(".osrel")?.toString("utf8") ?? "", /^ID=bronze$/m);
});

test("no PEM private key in the cache, outputs, work tree or bronze's temp directories, and no key left on tmpfs", async () => {
  // searches for the exact bytes of a build's key, over the whole temp directory: module-key.test.ts
  const bronzeTemp = (await readdir(tmpdir())).filter((n) => n.startsWith("bronze-")).map((n) => join(tmpdir(), n));
  // kernel source trees left by killed builds ship example PEM keys of their own; module-key.test.ts searches them for a build's key bytes
  assert.deepEqual(await findPrivateKeys([CACHE, OUT, WORK, ...bronzeTemp], { exclude: [join(WORK, "kernel")] }), []);
  assert.deepEqual(await leftoverKeyDirs(), []);
});

test("the UKI boots under UEFI (OVMF) to init's ready line: root read-only, /var writable", async () => {
  const result = await bronze(["boot", OUT, "--quiet"]);
  assert.equal(result.exitCode, 0, String(result.all));
  assert.match(String(result.stdout), /boot ok in [\d.]+ s: root=ro var=rw/);
});

test("init applies the hardening sysctls and powers the machine off when the command line asks for it", async () => {
  const { cmdline, version } = await manifest();
  const result = await boot(
    { kind: "kernel", kernel: join(OUT, "vmlinuz"), initramfs: join(OUT, "initramfs.cpio.zst"), cmdline: `${cmdline} bronze.poweroff=1` },
    { ...BOOT_DEFAULTS, expectPowerOff: true },
  );
  // no disk: /var is a tmpfs, so every boot is the first
  assert.deepEqual(result.ready, { root: "ro", var: "rw", varfs: "tmpfs", boots: "1", version, services: "0" });
  assert.equal(result.poweredOff, true);
  // every hardening sysctl this kernel has was set; the optional ones (e.g. networking) may be absent
  assert.match(result.console.join("\n"), /bronze: sysctl applied=(1\d|[2-9]\d) absent=\d+ failed=0/);
});
