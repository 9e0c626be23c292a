import assert from "node:assert/strict";
import { test } from "node:test";
import { YamlFile } from "../../src/core/yamlfile.ts";

test("a YAML syntax error names the line it is on, not the first line", () => {
  const text = "exceptions:\n  - option: X\n    reason: removed in 6.0 (not in 6.12): fine\n";
  assert.throws(() => YamlFile.parse("exceptions.yaml", text), /exceptions\.yaml:3: not valid YAML: Nested mappings/);
});
