// Compiles src/ to JavaScript in dist/ (tsconfig.build.json) and then writes dist/BUILT,
// dated when the compile began: bin/concord runs dist/ only while no source file is newer
// than that stamp, so a file edited during or after a build never runs from a stale dist/.
// Runs at `npm install` (the prepare script), in `npm test` and before `npm run bench`;
// incremental, so a build with nothing changed takes a few seconds.
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, utimesSync } from "node:fs";
import { createRequire } from "node:module";

const startedAt = new Date();
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const result = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { stdio: "inherit" });
if (result.status !== 0) process.exit(result.status ?? 1);
mkdirSync("dist", { recursive: true });
closeSync(openSync("dist/BUILT", "w"));
utimesSync("dist/BUILT", startedAt, startedAt);
