import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDotConfig } from "../../src/kernel/config.ts";
import { kconfigDefinitions, offSymbols } from "../../src/kernel/kconfig-deps.ts";

const FILES: Record<string, string> = {
  Kconfig: 'source "arch/$(SRCARCH)/Kconfig"\nsource "fs/Kconfig"\n',
  "arch/x86/Kconfig": "config X86\n\tdef_bool y\n",
  "fs/Kconfig": [
    'menuconfig NETWORK_FILESYSTEMS',
    '\tbool "Network File Systems"',
    '\thelp',
    '\t  if you say N here, nothing below is visible.',
    '\t  config NOT_A_SYMBOL in help text',
    '',
    'if NETWORK_FILESYSTEMS',
    'source "fs/9p/Kconfig"',
    'endif',
    'menu "Misc"',
    '\tdepends on BLOCK # a comment',
    'config SQUASHFS',
    '\ttristate "SquashFS"',
    '\tdepends on BLOCK',
    'endmenu',
    'config AFTER',
    '\tbool "after the menu"',
  ].join("\n"),
  "fs/9p/Kconfig": 'config 9P_FS\n\ttristate "Plan 9"\n\tdepends on INET && NET_9P\n\tselect NETFS_SUPPORT\n',
};

test("a symbol's conditions are its depends-on lines plus the enclosing ifs and menus, help text ignored", () => {
  const defs = kconfigDefinitions((p) => FILES[p], "x86", new Set(["9P_FS", "SQUASHFS", "AFTER", "NOT_A_SYMBOL"]));
  assert.deepEqual(defs.get("9P_FS"), [{ file: "fs/9p/Kconfig", line: 1, conditions: ["NETWORK_FILESYSTEMS", "INET && NET_9P"] }]);
  assert.deepEqual(defs.get("SQUASHFS")?.[0]?.conditions, ["BLOCK", "BLOCK"]);
  assert.deepEqual(defs.get("AFTER")?.[0]?.conditions, []);
  assert.equal(defs.has("NOT_A_SYMBOL"), false);
});

test("the symbols that are off in the resolved config are named", () => {
  const values = parseDotConfig("CONFIG_INET=y\n# CONFIG_NET_9P is not set\n");
  assert.deepEqual(offSymbols(["NETWORK_FILESYSTEMS", "INET && NET_9P"], values), ["NETWORK_FILESYSTEMS", "NET_9P"]);
});
