import assert from "node:assert/strict";
import { copyFile, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import { execa } from "execa";
import { archNamed } from "../../src/core/arch.ts";
import { outputDirName } from "../../src/profile/profile.ts";
import { walkTree } from "../../src/core/walk.ts";
import { parsePe } from "../../src/uki/pe.ts";
import { assertModuleEnforcement, unpackImage } from "../helpers/boot-modules.ts";
import { startBuild } from "../helpers/build.ts";
import { bronze } from "../helpers/cli.ts";
import { startRegistry } from "../helpers/registry.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

// The minimal image for arm64, cross-built on this amd64 machine (Debian's aarch64-linux-gnu toolchain, the
// pinned arm64 systemd-boot-efi), booted in qemu-system-aarch64 -M virt (TCG) under AAVMF; and the one
// installer index of amd64 and arm64 that a release publishes.
const ARM = archNamed("aarch64");
const EM_AARCH64 = 183;
const OUT = join(PROJECT_ROOT, "_out", outputDirName({ name: "minimal", arch: ARM.name }));
/** the amd64 image's manifest and installer, and the release's index, copied at once: other tests re-publish _out/minimal meanwhile */
const AMD = await tempDir();
let RELEASE = { output: "", index: "" };
// the release, both architectures in one bronze build: the amd64 image is the shared image's (from the cache,
// or built here when this file runs alone), the arm64 one is compiled here, side by side within one job budget
before(async () => {
  const built = await startBuild("minimal", undefined, ["--arch", "x86_64", "--arch", ARM.name]);
  assert.equal(built.exitCode, 0, String(built.all));
  for (const name of ["manifest.json", "installer.oci.tar"]) await copyFile(join(PROJECT_ROOT, "_out", "minimal", name), join(AMD, name));
  RELEASE = { output: String(built.all), index: join(AMD, "release-index.oci.tar") };
  await copyFile(join(PROJECT_ROOT, "_out", "minimal-index", "installer.oci.tar"), RELEASE.index);
}, { timeout: 60 * 60_000 });

interface Manifest {
  arch: string;
  version: string;
  cmdline: string;
  installer: { tag: string; indexDigest: string; manifests: { architecture: string; digest: string }[] };
}
const manifest = async (dir: string) => JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Manifest;

test("one bronze build makes the release of both architectures: each image in its _out directory, their steps side by side, and the index over them", async () => {
  const output = RELEASE.output;
  for (const arch of ["x86_64", "aarch64"]) assert.match(output, new RegExp(`^bronze: built profile 'minimal' for ${arch} in [\\d.]+ s`, "m"), output);
  // the arm64 steps say whose they are; both graphs ran in one process, one job budget
  assert.match(output, /^✔ \[[\d:]+\] aarch64: kernel 6\.\d+\.\d+ \(profile minimal\)/m, output);
  assert.match(output, /^✔ \[[\d:]+\] kernel 6\.\d+\.\d+ \(profile minimal\)/m, output);
  assert.match(output, /^✔ \[[\d:]+\] aarch64: package musl /m, output);
  const index = JSON.parse((await execa("tar", ["-xOf", RELEASE.index, "index.json"])).stdout) as { manifests: { digest: string }[] };
  const root = index.manifests[0]?.digest.replace(":", "/") ?? "";
  const platforms = JSON.parse((await execa("tar", ["-xOf", RELEASE.index, `blobs/${root}`])).stdout) as { manifests: { platform: { architecture: string } }[] };
  assert.deepEqual(platforms.manifests.map((m) => m.platform.architecture), ["amd64", "arm64"]);
});

test("every program of the arm64 image is AArch64, the UKI and kernel are PE for machine 0xAA64, systemd-boot is the pinned arm64 one", async () => {
  const work = await tempDir();
  const image = await unpackImage(OUT, work);
  const elves: string[] = [];
  for (const { rel, kind } of walkTree(image.root)) {
    if (kind !== "file") continue;
    const file = join(image.root, rel);
    const head = (await readFile(file)).subarray(0, 20);
    if (head.subarray(0, 4).toString("latin1") !== "\x7fELF") continue;
    elves.push(file);
    assert.equal(head.readUInt16LE(18), EM_AARCH64, `${file} is not AArch64`);
  }
  assert.ok(elves.length >= 4, `init, crun, mke2fs, libc: ${elves.length} ELF files`);
  for (const name of ["uki.efi", "vmlinuz"]) assert.equal(parsePe(await readFile(join(OUT, name))).machine, ARM.peMachine, name);
  // the UKI's own sections, named whole (their headers went over the stub's NOP fill)
  const sections = parsePe(await readFile(join(OUT, "uki.efi"))).sections.map((s) => s.name);
  assert.deepEqual(sections.slice(-5), [".osrel", ".cmdline", ".uname", ".linux", ".initrd"]);
  const { arch, cmdline, installer } = await manifest(OUT);
  assert.equal(arch, "aarch64");
  assert.match(cmdline, /(^| )console=ttyAMA0,115200( |$)/);
  assert.match(cmdline, / kpti=on ssbd=kernel$/);
  const words = cmdline.split(" ");
  assert.ok(!words.includes("pti=on") && !words.some((w) => w.startsWith("console=ttyS0")), "x86's own arguments are gone");
  assert.deepEqual(installer.manifests.map((m) => m.architecture), ["arm64"]);
  const work2 = await tempDir();
  await execa("umoci", ["unpack", "--image", `${join(OUT, "installer")}:${installer.tag}`, join(work2, "bundle")]);
  const boot = await readFile(join(work2, "bundle", "rootfs", "usr", "install", "arm64", "systemd-boot.efi"));
  assert.equal(parsePe(boot).machine, ARM.peMachine, "systemd-bootaa64.efi");
});

test("its hardening gate ran kernel-hardening-checker's ARM64 rules and passed", async () => {
  const report = JSON.parse(await readFile(join(OUT, "hardening.json"), "utf8")) as { arch?: string; results?: { option_name: string; check_result: string }[] } & Record<string, unknown>;
  const text = JSON.stringify(report);
  assert.match(text, /"ARM64"/);
  for (const option of ["CONFIG_ARM64_PAN", "CONFIG_UNMAP_KERNEL_AT_EL0", "CONFIG_ARM64_PTR_AUTH_KERNEL", "CONFIG_SHADOW_CALL_STACK", "kpti"]) assert.match(text, new RegExp(`"${option}"`), option);
  assert.doesNotMatch(text, /"CONFIG_X86_KERNEL_IBT"|"CONFIG_MITIGATION_RETPOLINE"/, "no x86 rule");
});

test("the arm64 UKI boots in qemu-system-aarch64 under AAVMF to init's ready line: root read-only, /var writable", async () => {
  const result = await bronze(["boot", OUT, "--quiet"]);
  assert.equal(result.exitCode, 0, String(result.all));
  assert.match(String(result.stdout), /boot ok in [\d.]+ s: root=ro var=rw/);
});

test("the arm64 kernel refuses its module unsigned or signed by another key, and loads it signed by the build's key", async () => {
  await assertModuleEnforcement(OUT, ARM);
});

test("with keys from bronze keys generate enrolled in AAVMF, Secure Boot enforcing: the arm64 UKI signed by their db boots (sbverify agrees), the unsigned one is refused", async () => {
  const work = await tempDir();
  const keys = join(work, "keys");
  const generated = await bronze(["keys", "generate", keys]);
  assert.equal(generated.exitCode, 0, String(generated.all));
  const signed = join(work, "uki.signed.efi");
  const signing = await bronze(["secureboot", "sign", join(OUT, "uki.efi"), "--key", join(keys, "db.key"), "--cert", join(keys, "db.crt"), "--out", signed]);
  assert.equal(signing.exitCode, 0, String(signing.all));
  assert.equal(parsePe(await readFile(signed)).machine, ARM.peMachine);
  const verified = await execa("sbverify", ["--cert", join(keys, "db.crt"), signed], { reject: false, all: true });
  assert.equal(verified.exitCode, 0, verified.all);

  const booted = await bronze(["boot", signed, "--secure-boot-keys", keys]);
  assert.equal(booted.exitCode, 0, String(booted.all));
  assert.match(String(booted.stdout), /^\| .*secureboot: Secure boot enabled/m, "the kernel saw Secure Boot on");
  assert.match(String(booted.stdout), /boot ok in [\d.]+ s: root=ro var=rw/);
  const unsigned = await bronze(["boot", join(OUT, "uki.efi"), "--secure-boot-keys", keys, "--quiet"]);
  assert.notEqual(unsigned.exitCode, 0, String(unsigned.all));
  assert.match(String(unsigned.all), /Access Denied|Security Violation/);
});

test("one installer index for amd64 and arm64: skopeo reads both platforms, --override-arch arm64 copies the arm64 image, bronze push carries the whole index", async () => {
  const work = await tempDir();
  const [amd, arm] = [await manifest(AMD), await manifest(OUT)];
  const index = join(work, "index");
  const made = await bronze(["image", "index", join(AMD, "installer.oci.tar"), join(OUT, "installer.oci.tar"), "--out", index]);
  assert.equal(made.exitCode, 0, String(made.all));
  // the index that the one build of both architectures wrote is this one
  const digest = /^index .*: (sha256:[0-9a-f]{64}), amd64 and arm64$/m.exec(String(made.stdout))?.[1];
  assert.ok(digest, String(made.stdout));
  assert.match(RELEASE.output, new RegExp(`^installer index of the release: ${digest} \\(amd64, arm64\\)`, "m"));
  const tag = arm.version;
  const raw = JSON.parse((await execa("skopeo", ["inspect", "--raw", `oci:${index}:${tag}`])).stdout) as { manifests: { digest: string; platform: { architecture: string; os: string } }[] };
  assert.deepEqual(
    raw.manifests.map((m) => [m.platform.architecture, m.platform.os, m.digest]),
    [...amd.installer.manifests, ...arm.installer.manifests].map((m) => [m.architecture, "linux", m.digest]),
    "each image byte for byte: the digests of the single-arch installers",
  );
  await execa("skopeo", ["copy", "--override-arch", "arm64", `oci:${index}:${tag}`, `oci:${join(work, "arm64")}:${tag}`]);
  const copied = JSON.parse(await readFile(join(work, "arm64", "index.json"), "utf8")) as { manifests: { digest: string }[] };
  assert.deepEqual(copied.manifests.map((m) => m.digest), [arm.installer.manifests[0]?.digest]);

  const registry = await startRegistry();
  const ref = `${registry.address}/bronze/installer:${tag}`;
  const [key, pub] = [join(work, "release.key"), join(work, "release.pub")];
  await execa("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key]);
  await execa("openssl", ["pkey", "-in", key, "-pubout", "-out", pub]);
  const pushed = await bronze(["push", index, ref, "--plain-http", "--sign-key", key]);
  assert.equal(pushed.exitCode, 0, String(pushed.all));
  // signed and attested as one release: an SBOM pair per platform image, one provenance over both builds
  const verified = await bronze(["verify", ref, "--key", pub, "--attestations", "--plain-http"]);
  assert.equal(verified.exitCode, 0, String(verified.all));
  for (const m of [...amd.installer.manifests, ...arm.installer.manifests]) assert.match(String(verified.stdout), new RegExp(`sbom https://spdx.dev/Document of ${m.digest}: signed`));
  for (const platform of ["amd64", "arm64"]) assert.match(String(verified.stdout), new RegExp(`^  ${platform}: kernel 6\\.\\d+\\.\\d+ input key sha256:`, "m"));
  const remote = JSON.parse((await execa("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`])).stdout) as { manifests: { platform: { architecture: string } }[] };
  assert.deepEqual(remote.manifests.map((m) => m.platform.architecture), ["amd64", "arm64"]);
  const armRemote = JSON.parse((await execa("skopeo", ["inspect", "--tls-verify=false", "--override-arch", "arm64", `docker://${ref}`])).stdout) as { Architecture: string; Digest: string };
  assert.equal(armRemote.Architecture, "arm64");

  // the disk of the architecture asked for; one the installer does not hold is refused, naming both
  const disk = join(work, "arm64.raw");
  const written = await bronze(["image", "disk", "--from", index, "--arch", "aarch64", "--out", disk, "--size", "200M"]);
  assert.equal(written.exitCode, 0, String(written.all));
  assert.match(String(written.stdout), /ESP: EFI\/BOOT\/BOOTAA64\.EFI/);
  const onlyAmd = await bronze(["image", "disk", "--from", join(AMD, "installer.oci.tar"), "--arch", "aarch64", "--out", join(work, "no.raw")]);
  assert.equal(onlyAmd.exitCode, 2, String(onlyAmd.all));
  assert.match(String(onlyAmd.stderr), /an installer for amd64, not arm64, which --arch is \(aarch64\)/);
  assert.equal(await stat(join(work, "no.raw")).then(() => true, () => false), false, "nothing written");
  const upgrade = await bronze(["upgrade", "--disk", disk, "--image", join(AMD, "installer.oci.tar")]);
  assert.equal(upgrade.exitCode, 2, String(upgrade.all));
  assert.match(String(upgrade.stderr), /an installer for amd64, not arm64, which the disk .*arm64\.raw \(EFI\/BOOT\/BOOTAA64\.EFI\) is \(aarch64\)/);
  const sameArch = await bronze(["image", "index", join(AMD, "installer.oci.tar"), join(AMD, "installer.oci.tar"), "--out", join(work, "twice")]);
  assert.equal(sameArch.exitCode, 2);
  assert.match(String(sameArch.stderr), /both hold the amd64 image; give each architecture once/);
  assert.deepEqual(await readdir(work).then((names) => names.includes("twice")), false);
});
