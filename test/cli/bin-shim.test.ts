// bin/concord's choice between the compiled dist/ and the TypeScript source: it runs dist/
// only while dist/BUILT is newer than every file under src/ and both tsconfig files, so a
// tree edited after its build never runs stale code. Exercised on a copy of the shim in a
// scratch package whose two entry points say which one ran (tsx from this package's
// node_modules, linked in).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { withTempDir } from "./helpers.js";

const SHIM = fileURLToPath(new URL("../../bin/concord", import.meta.url));
const NODE_MODULES = fileURLToPath(new URL("../../node_modules", import.meta.url));

function scratchPackage(root: string): void {
  mkdirSync(join(root, "bin"));
  copyFileSync(SHIM, join(root, "bin", "concord"));
  symlinkSync(NODE_MODULES, join(root, "node_modules"));
  writeFileSync(join(root, "package.json"), JSON.stringify({ type: "module" }));
  mkdirSync(join(root, "src", "cli"), { recursive: true });
  writeFileSync(join(root, "src", "cli", "main.ts"), 'const from: string = "source";\nconsole.log(from);\n');
  mkdirSync(join(root, "dist", "cli"), { recursive: true });
  writeFileSync(join(root, "dist", "cli", "main.js"), 'console.log("dist");\n');
  for (const config of ["tsconfig.json", "tsconfig.build.json"]) writeFileSync(join(root, config), "{}\n");
}

/** Dates a file `secondsAgo` in the past, so the test needs no sleeps between writes. */
function age(path: string, secondsAgo: number): void {
  const when = new Date(Date.now() - secondsAgo * 1000);
  utimesSync(path, when, when);
}

function runs(root: string): string {
  const result = spawnSync(process.execPath, [join(root, "bin", "concord")], { encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim();
}

test("bin/concord runs dist/ only while its build stamp is newer than every source file", () => {
  withTempDir((root) => {
    scratchPackage(root);
    for (const path of ["src/cli/main.ts", "src/cli", "src", "tsconfig.json", "tsconfig.build.json"]) {
      age(join(root, path), 60);
    }
    assert.equal(runs(root), "source", "no build stamp: the source");

    writeFileSync(join(root, "dist", "BUILT"), "");
    age(join(root, "dist", "BUILT"), 30);
    assert.equal(runs(root), "dist", "a build newer than every source file");

    age(join(root, "src/cli/main.ts"), 10);
    assert.equal(runs(root), "source", "a source file edited after the build");

    age(join(root, "src/cli/main.ts"), 60);
    writeFileSync(join(root, "src/cli/added.ts"), "export {};\n");
    age(join(root, "src/cli/added.ts"), 60);
    assert.equal(runs(root), "source", "a file added after the build dates its folder");

    age(join(root, "src/cli"), 60);
    age(join(root, "tsconfig.build.json"), 10);
    assert.equal(runs(root), "source", "a build config changed after the build");

    age(join(root, "tsconfig.build.json"), 60);
    assert.equal(runs(root), "dist", "everything older than the stamp again");
  });
});
