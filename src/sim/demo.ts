/**
 * `npm start` until the server exists: runs one simulated 3–5 node cluster under faults on
 * virtual time, narrates the cluster-level events (elections, crashes, partitions, membership
 * changes, transfers, snapshots), and ends with what the clients saw and whether the recorded
 * history is linearizable.
 */
import { runSimulation } from "./run.js";
import { formatStatsTable } from "./sweep.js";

const NARRATED = /became leader|crash|start #|partition|healed|conf change|transfer|snapshot installed/;
const NOISE = /^dropped|refused/;
const seed = Number(process.argv[2] ?? 7);

console.log(`Concord simulated cluster demo (seed ${seed}, profile chaos; virtual time in ms)\n`);
const result = runSimulation({
  seed,
  profile: "chaos",
  onTrace: (line) => {
    if (NARRATED.test(line.text) && !NOISE.test(line.text))
      console.log(`${String(line.time).padStart(6)}  ${line.text}`);
  },
});
console.log(`\nWhat happened, in numbers:\n${formatStatsTable(result.stats)}\n`);
if (result.violations.length === 0) {
  console.log(
    `All invariants held and the history of ${result.history.length} client operations is linearizable.`,
  );
} else {
  for (const v of result.violations) console.log(`VIOLATION [${v.invariant}] at ${v.time}ms: ${v.message}`);
  process.exitCode = 1;
}
console.log("Run `npm run sim -- --seeds 100` to check many seeds, `npm test` for the whole suite.");
