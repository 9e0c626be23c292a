import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { execa } from "execa";
import { boot, BOOT_DEFAULTS } from "../../src/boot/qemu.ts";
import { findPrivateKeys, keyNeedles } from "../../src/kernel/key-scan.ts";
import { parsePe, readSection, sectionAsLoaded } from "../../src/uki/pe.ts";
import { predictPcr11 } from "../../src/uki/pcr.ts";
import { bronze } from "../helpers/cli.ts";
import { freePort } from "../helpers/registry-process.ts";
import { PROJECT_ROOT, tempDir } from "../helpers/tmp.ts";

const MEASURE = "/usr/lib/systemd/systemd-measure";
const dir = await tempDir();
const key = join(dir, "pcr.key");
let uki = "";

const started = Date.now();
const out = join(PROJECT_ROOT, "_out", "measured");

// the minimal profile under another name, so that its signed UKI does not replace _out/minimal's
before(async () => {
  await execa("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key]);
  const profile = join(dir, "measured.yaml");
  const minimal = await readFile(join(PROJECT_ROOT, "profiles", "minimal.yaml"), "utf8");
  await writeFile(profile, minimal.replace(/^name: minimal$/m, "name: measured"));
  const built = await bronze(["build", "--profile", profile, "--pcr-signing-key", key]);
  assert.equal(built.exitCode, 0, String(built.all));
  uki = join(out, "uki.efi");
});

after(() => rm(out, { recursive: true, force: true }));

/** Each section systemd-measure takes, as the stub sees it in memory, in files of `dir`. */
async function sectionFiles(image: Uint8Array): Promise<string[]> {
  const options: Record<string, string> = { ".linux": "--linux", ".osrel": "--osrel", ".cmdline": "--cmdline", ".initrd": "--initrd", ".pcrpkey": "--pcrpkey" };
  const args: string[] = [];
  for (const section of parsePe(image).sections.filter((s) => s.name in options)) {
    const file = join(dir, `section${section.name}`);
    await writeFile(file, sectionAsLoaded(image, section));
    args.push(`${options[section.name]}=${file}`);
  }
  return args;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/** swtpm on loopback TCP ports, for systemd-measure 252, which makes its policy digests in a TPM. */
async function tcpTpm(): Promise<{ device: string; stop: () => Promise<string> }> {
  for (let attempt = 1; ; attempt++) {
    // the swtpm TCTI finds the control channel on the port after the TPM's: that one may be taken, and
    // either may be taken before swtpm binds it; then swtpm ends, and two other ports are tried
    const server = await freePort();
    const ctrl = server + 1;
    const swtpm = execa("swtpm", ["socket", "--tpm2", "--tpmstate", `dir=${dir}`, "--server", `type=tcp,port=${server},bindaddr=127.0.0.1`, "--ctrl", `type=tcp,port=${ctrl},bindaddr=127.0.0.1`, "--flags", "not-need-init"], { reject: false, all: true });
    let exited = false;
    void swtpm.then(() => (exited = true));
    const stop = async () => String((swtpm.kill(), (await swtpm).all));
    // on a loaded machine (the other lanes compile a kernel) swtpm may take seconds to listen on both ports
    const up = async () => !exited && (await listening(server)) && (await listening(ctrl)) && !exited;
    const deadline = Date.now() + 20_000;
    while (!exited && !(await up()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    if (await up()) return { device: `swtpm:host=127.0.0.1,port=${server}`, stop };
    const output = await stop();
    if (!(exited && attempt < 3)) assert.fail(`swtpm did not listen on ${server} and ${ctrl} within 20 s: ${output}`);
  }
}

test("the UKI's PCR 11 predictions and its .pcrsig are what systemd-measure calculates and signs for the same sections, byte for byte", async () => {
  const image = await readFile(uki);
  const sections = await sectionFiles(image);
  const calculated = await execa(MEASURE, ["calculate", ...sections, "--bank=sha256", "--json=short"]);
  const expected = (JSON.parse(calculated.stdout) as { sha256: { phase: string; hash: string }[] }).sha256;
  assert.deepEqual(predictPcr11(image).map((p) => ({ phase: p.phase, hash: p.sha256.toString("hex") })), expected.map(({ phase, hash }) => ({ phase, hash })));

  const publicKey = join(dir, "section.pcrpkey");
  const tpm = await tcpTpm();
  // its log on the console at debug level: a failure says why (a TPM library it cannot load is only a debug line)
  const signed = await execa(MEASURE, ["sign", ...sections, "--bank=sha256", `--private-key=${key}`, `--public-key=${publicKey}`, `--tpm2-device=${tpm.device}`, "--json=short"], { reject: false, all: true, env: { SYSTEMD_LOG_TARGET: "console", SYSTEMD_LOG_LEVEL: "debug" } });
  const tpmLog = await tpm.stop();
  assert.equal(signed.exitCode, 0, `${signed.all}\nswtpm: ${tpmLog}`);
  assert.equal(Buffer.from(readSection(image, ".pcrsig") ?? []).toString(), signed.stdout.trim());
  const pem = await execa("openssl", ["pkey", "-in", key, "-pubout"]);
  assert.equal(Buffer.from(readSection(image, ".pcrpkey") ?? []).toString().trim(), pem.stdout.trim());

  // the private key: in memory only, never in the outputs or in a cache entry this build wrote
  const needles = keyNeedles(await readFile(key, "utf8"));
  assert.deepEqual(await findPrivateKeys([out], { needles }), [], "no copy of the PCR signing key in the outputs");
  assert.deepEqual(await findPrivateKeys([join(PROJECT_ROOT, ".cache", "bronze", "store")], { needles, changedSince: started }), [], "nor in the cache");
});

test("booted with a TPM, PCR 11 read in the guest equals the prediction for the ready phase; a tampered .cmdline changes it", async () => {
  const image = await readFile(uki);
  const ready = predictPcr11(image).at(-1)!.sha256.toString("hex");
  const measured = await boot({ kind: "uki", uki }, { ...BOOT_DEFAULTS, tpm: true });
  assert.equal(measured.ready.pcr11, ready, "PCR 11 in the guest (after systemd-stub and init's four phases) is the predicted one");

  // one byte of the command line, and the UKI still boots: the measurement must tell
  const tampered = Buffer.from(image);
  const cmdline = parsePe(image).sections.find((s) => s.name === ".cmdline")!;
  const at = tampered.indexOf("page_alloc.shuffle=1", cmdline.pointerToRawData) + "page_alloc.shuffle=".length;
  assert.ok(at > cmdline.pointerToRawData && at < cmdline.pointerToRawData + cmdline.sizeOfRawData, "the option is in .cmdline");
  tampered[at] = "0".charCodeAt(0);
  const tamperedFile = join(dir, "tampered.efi");
  await writeFile(tamperedFile, tampered);
  const changed = await boot({ kind: "uki", uki: tamperedFile }, { ...BOOT_DEFAULTS, tpm: true });
  assert.notEqual(changed.ready.pcr11, ready, "a tampered .cmdline booted with the signed PCR 11 value");
  assert.equal(changed.ready.pcr11, predictPcr11(tampered).at(-1)!.sha256.toString("hex"), "and its measurement is the tampered file's prediction");
});

test("a PCR signing key that systemd-stub cannot check is refused before anything builds, naming the option and the fix", async () => {
  const ec = join(dir, "ec.key");
  await execa("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ec]);
  const weak = join(dir, "weak.key");
  await execa("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", weak]);
  for (const [file, reason] of [[ec, /--pcr-signing-key .*ec\.key: PCR signing .* needs an RSA key, not ec/], [weak, /--pcr-signing-key .*weak\.key: a 1024-bit RSA key is too weak; give one of at least 2048 bits/]] as const) {
    const result = await bronze(["build", "--profile", "minimal", "--pcr-signing-key", file]);
    assert.equal(result.exitCode, 2, String(result.all));
    assert.match(String(result.all), reason);
  }
  const missing = await bronze(["build", "--profile", "minimal", "--pcr-signing-key-passphrase-file", ec]);
  assert.equal(missing.exitCode, 2, String(missing.all));
  assert.match(String(missing.all), /--pcr-signing-key-passphrase-file needs --pcr-signing-key/);
});
