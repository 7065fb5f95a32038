// The state machine must be deterministic: every replica applies the same entries to the
// same state and must end byte-identical. So src/kv reads no clock, draws no random number,
// sets no timer and uses no Node built-in but zlib's pure crc32 (its only clock, HybridClock,
// is handed one).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const KV_DIR = "src/kv";
const FORBIDDEN = [
  /\bfrom\s+["']node:(?!zlib["'])/,
  /\bimport\s*\(/,
  /\brequire\s*\(/,
  /\bMath\.random\b/,
  /\bDate\.now\b/,
  /\bnew Date\b/,
  /\bperformance\.now\b/,
  /\b(setTimeout|setInterval|setImmediate|queueMicrotask)\b/,
  /\bprocess\./,
  /\bBuffer\b/,
];

function impurities(path: string, text: string): string[] {
  return text
    .split("\n")
    .flatMap((line, i) =>
      FORBIDDEN.some((re) => re.test(line)) ? [`${path}:${i + 1}: ${line.trim()}`] : [],
    );
}

test("src/kv reads no clock, draws no randomness, sets no timer and imports no Node built-in but zlib", () => {
  const files = readdirSync(KV_DIR).filter((name) => name.endsWith(".ts"));
  assert.ok(files.length > 5, "source files found");
  const found = files.flatMap((name) =>
    impurities(join(KV_DIR, name), readFileSync(join(KV_DIR, name), "utf8")),
  );
  assert.deepEqual(found, []);
});

test("the check itself flags clocks, randomness and built-ins", () => {
  assert.equal(impurities("x.ts", 'import { readFileSync } from "node:fs";').length, 1);
  assert.equal(impurities("x.ts", 'import { crc32 } from "node:zlib";').length, 0);
  assert.equal(impurities("x.ts", "const t = Date.now();").length, 1);
  assert.equal(impurities("x.ts", "const r = Math.random();").length, 1);
  assert.equal(impurities("x.ts", "setTimeout(f, 1);").length, 1);
  assert.equal(impurities("x.ts", "const clock = new HybridClock(physicalNow);").length, 0);
});
