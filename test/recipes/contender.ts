// One contender of the real-process election test (process-election.test.ts), run as its own
// process with tsx: it connects to the cluster (Concord.connect), campaigns in the fenced
// election recipe, and once elected makes fenced writes (each carries the leadership's guard)
// to `<log>/<term>/<id>/<n>` until its leadership is lost; then it tries one more write under
// the stale term and exits. Everything it learns is one line on stdout:
//   ready | elected term=T | write-start term=T n=N | write term=T n=N ok|rejected | lost term=T reason=R |
//   stale-write term=T ok|rejected | error <message>
// Usage: contender.ts --id ID --endpoints host:port,... --subspace S --log PREFIX
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { Concord } from "../../src/api/concord.js";
import { AmbiguousWriteError } from "../../src/api/errors.js";
import { putRequest } from "../../src/kv/commands.js";
import type { CommandResult } from "../../src/kv/results.js";
import { Election, LeadershipLostError, type Leadership } from "../../src/recipes/index.js";

/** A short lease, so a paused holder loses it soon: the test pauses the holder past it. */
const ELECTION_CONFIG = { leaseSeconds: 2, renewIntervalMs: 400, candidateTimeoutMs: 1_000 };
const WRITE_PAUSE_MS = 100;
/** Bounds the write loop of a leadership that is never lost (the test stops us long before). */
const MAX_WRITES = 3_000;
/** Times a write whose outcome is unknown is sent again before the contender gives up. */
const MAX_RETRIES = 10;

const { values } = parseArgs({
  options: {
    id: { type: "string" },
    endpoints: { type: "string" },
    subspace: { type: "string" },
    log: { type: "string" },
  },
});
const { id, endpoints, subspace, log } = values;
if (id === undefined || endpoints === undefined || subspace === undefined || log === undefined) {
  console.error("usage: contender.ts --id ID --endpoints host:port,... --subspace S --log PREFIX");
  process.exit(2);
}

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const db = Concord.connect({ endpoints: endpoints.split(",") });
const election = new Election(db, { subspace, candidateId: id });

/** The outcome of a fenced write; one whose answer was lost is sent again with its id until known. */
async function fencedWrite(leadership: Leadership, n: number): Promise<boolean> {
  const key = new TextEncoder().encode(`${log}/${leadership.term}/${id}/${n}`);
  let attempt: () => Promise<CommandResult> = async () => {
    const result = await db.txn({
      compares: leadership.guard(),
      success: [putRequest({ key, value: new TextEncoder().encode(id) })],
    });
    return {
      revision: result.revision,
      response: { kind: "txn", succeeded: result.succeeded, responses: [] },
    };
  };
  for (let tries = 1; ; tries++) {
    try {
      const { response } = await attempt();
      if (response.kind !== "txn") throw new Error(`a fenced write was answered with ${response.kind}`);
      return response.succeeded;
    } catch (error) {
      if (!(error instanceof AmbiguousWriteError) || tries >= MAX_RETRIES) throw error;
      attempt = () => db.retry(error);
    }
  }
}

async function lead(leadership: Leadership): Promise<void> {
  const term = leadership.term;
  say(`elected term=${term}`);
  // Told at once, whatever the write loop is waiting on.
  leadership.lost.addEventListener("abort", () => {
    const reason =
      leadership.lost.reason instanceof LeadershipLostError ? leadership.lost.reason.reason : "unknown";
    say(`lost term=${term} reason=${reason}`);
  });
  for (let n = 0; n < MAX_WRITES && !leadership.lost.aborted; n++) {
    say(`write-start term=${term} n=${n}`);
    const ok = await fencedWrite(leadership, n);
    say(`write term=${term} n=${n} ${ok ? "ok" : "rejected"}`);
    await sleep(WRITE_PAUSE_MS);
  }
  if (!leadership.lost.aborted) return;
  const stale = await fencedWrite(leadership, MAX_WRITES);
  say(`stale-write term=${term} ${stale ? "ok" : "rejected"}`);
}

try {
  await election.configure(ELECTION_CONFIG);
  say("ready");
  await lead(await election.campaign(id));
  await election.close();
  await db.close();
} catch (error) {
  say(`error ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
  await db.close();
}
