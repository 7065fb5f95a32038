// The recipes must run unchanged on the simulator's virtual time: no clock, timer or
// randomness but the injected RecipeRuntime (client.ts's systemRuntime is the one place that
// binds it to the process), and no import of src/api, the layer above them.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const RECIPES_DIR = "src/recipes";
/** The default runtime: performance.now and the global timers, on purpose. */
const RUNTIME_BINDING = join(RECIPES_DIR, "client.ts");
const FORBIDDEN = [
  /\bMath\.random\b/,
  /\bDate\.now\b/,
  /\bnew Date\b/,
  /\bperformance\.now\b/,
  /(?<![.\w])(setTimeout|setInterval|setImmediate)\s*\(/,
  /\bfrom\s+["'](node:)?timers/,
  /\bfrom\s+["'][./]*\/api\//,
  /\bprocess\./,
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith(".ts")
        ? [join(dir, entry.name)]
        : [],
  );
}

test("src/recipes reads time only through the injected runtime and does not import src/api", () => {
  const files = sourceFiles(RECIPES_DIR);
  assert.ok(files.length > 8, "source files found");
  const found = files
    .filter((path) => path !== RUNTIME_BINDING)
    .flatMap((path) =>
      readFileSync(path, "utf8")
        .split("\n")
        .flatMap((line, i) =>
          FORBIDDEN.some((re) => re.test(line)) ? [`${path}:${i + 1}: ${line.trim()}`] : [],
        ),
    );
  assert.deepEqual(found, []);
});

test("the purity check bites", () => {
  const samples = [
    "const t = Date.now();",
    "setTimeout(f, 1)",
    'import { Concord } from "../../api/index.js";',
  ];
  for (const sample of samples)
    assert.ok(
      FORBIDDEN.some((re) => re.test(sample)),
      sample,
    );
  assert.ok(!FORBIDDEN.some((re) => re.test("this.runtime.setTimeout(f, 1)")));
});
