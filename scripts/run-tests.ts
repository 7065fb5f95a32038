// Finds every test/**/*.test.ts file and runs them with node:test through tsx.
// Node 20's test runner does not expand globs or pick up .ts files by itself.
// Usage: tsx scripts/run-tests.ts [substring ...]   (only files whose path contains one of them)
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

/** The whole suite runs in about 5 minutes; no one test needs 15. */
const DEFAULT_TEST_TIMEOUT_MS = 15 * 60_000;

function findTests(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTests(path));
    else if (entry.name.endsWith(".test.ts")) found.push(path);
  }
  return found.sort();
}

const filters = process.argv.slice(2);
const files = findTests("test").filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(", ")}`);
  process.exit(1);
}
// --test-force-exit: a file's process exits once its tests are done, even if a client library
// left a timer or socket behind (a failed etcd3 test once kept its file, and so the suite, alive
// until CI's limit). --test-timeout bounds any test that sets no bound of its own.
const result = spawnSync(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    "--test-concurrency=2",
    "--test-force-exit",
    `--test-timeout=${DEFAULT_TEST_TIMEOUT_MS}`,
    "--test-reporter=spec",
    ...files,
  ],
  { stdio: "inherit" },
);
process.exit(result.status ?? 1);
