import assert from "node:assert/strict";
import { test } from "node:test";
import { directoriesAbove } from "../../src/core/paths.ts";

test("directoriesAbove: each directory above the paths once, parents first, in the order the paths name them", () => {
  assert.deepEqual([...directoriesAbove(["EFI/BOOT/BOOTX64.EFI", "loader/loader.conf", "EFI/Linux/a.efi", "top"])], ["EFI", "EFI/BOOT", "loader", "EFI/Linux"]);
  assert.deepEqual([...directoriesAbove([])], []);
});
