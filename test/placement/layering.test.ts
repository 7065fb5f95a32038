// The placement layer imports only downward: never from the layers above it (txn, recipes,
// api, cli) nor the test-only simulator.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const ROOT = "src/placement";
const FORBIDDEN = ["txn", "recipes", "api", "cli", "sim"];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

test("src/placement imports nothing from the layers above it", () => {
  const files = sources(ROOT);
  assert.ok(files.length >= 8, "the placement sources were not found");
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    for (const match of text.matchAll(/from "([^"]+)"/g)) {
      const path = match[1]!;
      for (const layer of FORBIDDEN) {
        assert.ok(!new RegExp(`^(\\.\\./)+${layer}/`).test(path), `${file} imports ${path}`);
      }
    }
  }
});
