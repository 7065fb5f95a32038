// The consensus core must stay pure: no Node built-ins, no clocks, timers or Math.random.
// The simulator's determinism depends on it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const RAFT_DIR = "src/raft";
const FORBIDDEN_IMPORT =
  /\bfrom\s+["'](node:[^"']*|fs|net|os|path|crypto|child_process|worker_threads|timers|events|util|http|https|dgram|stream)(\/[^"']*)?["']|\bimport\s*\(|\brequire\s*\(/;
const FORBIDDEN_CALL =
  /\b(Math\.random|Date\.now|new Date|performance\.now|setTimeout|setInterval|setImmediate|process\.)/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

export function findImpurities(files: readonly { path: string; text: string }[]): string[] {
  const found: string[] = [];
  for (const { path, text } of files) {
    text.split("\n").forEach((line, i) => {
      if (FORBIDDEN_IMPORT.test(line) || FORBIDDEN_CALL.test(line))
        found.push(`${path}:${i + 1}: ${line.trim()}`);
    });
  }
  return found;
}

test("src/raft imports no Node built-in and reads no clock or random source", () => {
  const files = sourceFiles(RAFT_DIR).map((path) => ({ path, text: readFileSync(path, "utf8") }));
  assert.ok(files.length > 0, "no source files found under src/raft");
  assert.deepEqual(findImpurities(files), []);
});

test("the purity check itself catches forbidden imports and calls", () => {
  const bad = [
    { path: "a.ts", text: 'import { readFileSync } from "node:fs";' },
    { path: "b.ts", text: "import x from 'crypto';" },
    { path: "c.ts", text: "const t = Date.now();" },
    { path: "d.ts", text: "const r = Math.random();" },
    { path: "e.ts", text: "setTimeout(() => {}, 1);" },
  ];
  assert.equal(findImpurities(bad).length, bad.length);
  assert.deepEqual(findImpurities([{ path: "ok.ts", text: 'import type { Entry } from "./types.js";' }]), []);
});
