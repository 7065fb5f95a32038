/**
 * The workloads of the etcd comparison, run through one client implementation (the `etcd3`
 * npm client over grpc-js) against either cluster: closed-loop put and linearizable get at a
 * fixed concurrency, open-loop put and get at a fixed offered rate, compare-and-swap txns,
 * and a watch fan-out (1 writer, 100 watchers). Each row is bounded in time and in count,
 * measures per-operation latency on the monotonic clock, and reads the servers' CPU (every
 * member's process tree) and the bench process's CPU across exactly the measured window.
 * Any failed operation fails the row.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Etcd3, type Watcher } from "etcd3";
import { withTimeout } from "../cluster.js";
import { clientCpuMicros, serverCpuMicros } from "./cpu.js";
import type { ServerCluster } from "./servers.js";
import { measurementOf, type Measurement, type RowSpec } from "./stats.js";

export const VALUE_BYTES = 256;
/** Puts cycle over this many keys; gets read them (every one is written before the first row). */
export const KEY_COUNT = 1_000;
/** No row issues more operations than this, however fast the servers are. */
export const MAX_OPS_PER_ROW = 500_000;
/** An open-loop row stops issuing (and waits) while this many operations are outstanding. */
const OPEN_LOOP_MAX_OUTSTANDING = 2_000;
/** How long a row may take, after its issuing window, to collect what is still in flight. */
const DRAIN_LIMIT_MS = 30_000;
export const WATCHERS = 100;
/** The watch writer's pace: one outstanding put, at most this many a second. */
export const WATCH_PUTS_PER_SECOND = 100;

const KEY_PREFIX = "bench/key/";
const CAS_PREFIX = "bench/cas/";
const WATCH_KEY = "bench/watch/key";

/** The clients of one cluster: all load goes to its leader's endpoint. */
export interface Target {
  readonly cluster: ServerCluster;
  /** The load client: every concurrent operation of a row shares its one connection. */
  readonly client: Etcd3;
  /** A second connection that holds the watchers of the fan-out row. */
  readonly watchClient: Etcd3;
}

export function keyName(index: number): string {
  return `${KEY_PREFIX}${String(index % KEY_COUNT).padStart(6, "0")}`;
}

/** A 256-byte value that starts with `index` in decimal, so a watcher can tell which put it sees. */
export function valueFor(index: number): Buffer {
  const value = Buffer.alloc(VALUE_BYTES, "v");
  value.write(`${index};`, 0, "latin1");
  return value;
}

/** The index `valueFor` wrote at the start of `value`, or -1 if it holds none. */
export function indexInValue(value: Buffer): number {
  const end = value.indexOf(";");
  const index = end <= 0 ? NaN : Number(value.subarray(0, end).toString("latin1"));
  return Number.isInteger(index) ? index : -1;
}

/** Connects the clients of `cluster` and writes every key the get rows read. */
export async function openTarget(cluster: ServerCluster): Promise<Target> {
  const client = new Etcd3({ hosts: `http://${cluster.leaderEndpoint}` });
  const watchClient = new Etcd3({ hosts: `http://${cluster.leaderEndpoint}` });
  const target = { cluster, client, watchClient };
  try {
    await closedLoop(32, KEY_COUNT, 120_000, (index) =>
      client.put(keyName(index)).value(valueFor(index)).exec(),
    );
    return target;
  } catch (error) {
    closeTarget(target);
    throw error;
  }
}

export function closeTarget(target: Target): void {
  target.client.close();
  target.watchClient.close();
}

/**
 * Runs `operation(index)` from `concurrency` loops, each starting its next one when the last
 * answered, until `maxOps` were issued or `maxMs` passed. The latency of each, in ms.
 */
async function closedLoop(
  concurrency: number,
  maxOps: number,
  maxMs: number,
  operation: (index: number) => Promise<unknown>,
): Promise<number[]> {
  const latenciesMs: number[] = [];
  let issued = 0;
  const deadline = performance.now() + maxMs;
  const loop = async (): Promise<void> => {
    while (issued < maxOps && performance.now() < deadline) {
      const index = issued++;
      const sent = performance.now();
      await operation(index);
      latenciesMs.push(performance.now() - sent);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return latenciesMs;
}

/**
 * Issues `operation(index)` on a fixed schedule, `perSecond` a second for `seconds`, whether
 * or not earlier ones have answered (open loop). Latency runs from the scheduled moment (or
 * from when the operation left, if that was earlier), so a server that falls behind shows it
 * in latency rather than hiding it (no coordinated omission). Issuing pauses while
 * OPEN_LOOP_MAX_OUTSTANDING are in flight and stops when the window ends, so an overloaded
 * server shows a lower achieved rate.
 */
async function openLoop(
  perSecond: number,
  seconds: number,
  operation: (index: number) => Promise<unknown>,
): Promise<number[]> {
  const total = Math.min(MAX_OPS_PER_ROW, Math.floor(perSecond * seconds));
  const intervalMs = 1000 / perSecond;
  const latenciesMs: number[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  const started = performance.now();
  const windowEnd = started + seconds * 1000;
  // A server that cannot keep up holds the loop at the outstanding cap; the window still ends on time.
  for (let index = 0; index < total && failure === undefined && performance.now() < windowEnd; index++) {
    const due = started + index * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    while (inFlight.size >= OPEN_LOOP_MAX_OUTSTANDING) await Promise.race(inFlight);
    // A wait under a millisecond is not slept (a timer would overshoot it), so an operation may
    // leave just before it is due: its latency then runs from when it left.
    const start = Math.min(due, performance.now());
    const done: Promise<void> = operation(index).then(
      () => {
        latenciesMs.push(performance.now() - start);
        inFlight.delete(done);
      },
      (error: unknown) => {
        failure ??= error;
        inFlight.delete(done);
      },
    );
    inFlight.add(done);
  }
  await withTimeout(Promise.all(inFlight), DRAIN_LIMIT_MS, "the open-loop row's last operations");
  if (failure !== undefined) throw failure instanceof Error ? failure : new Error(JSON.stringify(failure));
  return latenciesMs;
}

/** The put of the closed and open-loop rows: key and value follow the op's index. */
function putOperation(target: Target): (index: number) => Promise<unknown> {
  return (index) => target.client.put(keyName(index)).value(valueFor(index)).exec();
}

/** A linearizable get (the client's default) of a key the prefill wrote; a missing key fails the row. */
function getOperation(target: Target): (index: number) => Promise<unknown> {
  return async (index) => {
    const value = await target.client.get(keyName(index)).buffer();
    if (value === null) throw new Error(`${target.cluster.kind}: ${keyName(index)} is missing`);
  };
}

/**
 * Compare-and-swap: each loop owns one counter key and moves it from n to n+1 with a txn
 * whose compare is on the value; since nobody else writes that key, every txn must succeed.
 */
async function prepareCas(target: Target, concurrency: number, seconds: number): Promise<PreparedRow> {
  const counters = Array.from({ length: concurrency }, () => 0);
  await Promise.all(counters.map((_, loop) => target.client.put(`${CAS_PREFIX}${loop}`).value("0").exec()));
  const run = async (): Promise<number[]> => {
    const latenciesMs: number[] = [];
    const deadline = performance.now() + seconds * 1000;
    let issued = 0;
    const loop = async (owner: number): Promise<void> => {
      const key = `${CAS_PREFIX}${owner}`;
      while (issued < MAX_OPS_PER_ROW && performance.now() < deadline) {
        issued++;
        const current = counters[owner] ?? 0;
        const sent = performance.now();
        const result = await target.client
          .if(key, "Value", "==", String(current))
          .then(target.client.put(key).value(String(current + 1)))
          .commit();
        latenciesMs.push(performance.now() - sent);
        if (!result.succeeded)
          throw new Error(`${target.cluster.kind}: the compare-and-swap of ${key} from ${current} failed`);
        counters[owner] = current + 1;
      }
    };
    await Promise.all(counters.map((_, owner) => loop(owner)));
    return latenciesMs;
  };
  return unprepared(run);
}

/**
 * Watch fan-out: WATCHERS watchers on one key (on the watch connection), one writer putting
 * to it at WATCH_PUTS_PER_SECOND. An operation is one event delivered to one watcher; its
 * latency runs from the put's send to the event's arrival. A missing event fails the row.
 */
async function prepareWatch(target: Target, seconds: number): Promise<PreparedRow> {
  const sentAt = new Map<number, number>();
  const latenciesMs: number[] = [];
  let failure: string | undefined;
  const watchers: Watcher[] = [];
  const release = async (): Promise<void> => {
    await Promise.all(watchers.map((watcher) => watcher.cancel()));
  };
  try {
    for (let i = 0; i < WATCHERS; i++) {
      const watcher = await target.watchClient.watch().key(WATCH_KEY).create();
      watchers.push(watcher);
      watcher.on("put", (kv) => {
        const arrived = performance.now();
        const index = indexInValue(kv.value);
        const sent = sentAt.get(index);
        if (sent === undefined) failure ??= `a watcher saw a put it was not sent (index ${index})`;
        else latenciesMs.push(arrived - sent);
      });
      watcher.on("error", (error: Error) => (failure ??= `a watcher failed: ${error.message}`));
    }
  } catch (error) {
    await release();
    throw error;
  }
  const run = async (): Promise<number[]> => {
    const writes = await pacedWriter(target, seconds, sentAt);
    const expected = writes * WATCHERS;
    const deadline = performance.now() + DRAIN_LIMIT_MS;
    while (latenciesMs.length < expected && failure === undefined && performance.now() < deadline)
      await sleep(20);
    if (failure !== undefined) throw new Error(`${target.cluster.kind}: ${failure}`);
    if (latenciesMs.length !== expected)
      throw new Error(
        `${target.cluster.kind}: ${latenciesMs.length} of ${expected} watch events arrived within ${DRAIN_LIMIT_MS} ms`,
      );
    return latenciesMs;
  };
  return { run, release };
}

/** One writer, one put outstanding, paced to WATCH_PUTS_PER_SECOND; how many puts it made. */
async function pacedWriter(target: Target, seconds: number, sentAt: Map<number, number>): Promise<number> {
  const started = performance.now();
  const total = Math.floor(WATCH_PUTS_PER_SECOND * seconds);
  for (let index = 0; index < total; index++) {
    const wait = started + (index * 1000) / WATCH_PUTS_PER_SECOND - performance.now();
    if (wait > 1) await sleep(wait);
    sentAt.set(index, performance.now());
    await target.client.put(WATCH_KEY).value(valueFor(index)).exec();
  }
  return total;
}

/** A row made ready outside the measured window: `run` is measured, `release` comes after. */
interface PreparedRow {
  readonly run: () => Promise<number[]>;
  readonly release: () => Promise<void>;
}

function unprepared(run: () => Promise<number[]>): PreparedRow {
  return { run, release: () => Promise.resolve() };
}

async function prepareRow(target: Target, spec: RowSpec, seconds: number): Promise<PreparedRow> {
  switch (spec.workload) {
    case "closed-put":
      return unprepared(() =>
        closedLoop(spec.concurrency, MAX_OPS_PER_ROW, seconds * 1000, putOperation(target)),
      );
    case "closed-get":
      return unprepared(() =>
        closedLoop(spec.concurrency, MAX_OPS_PER_ROW, seconds * 1000, getOperation(target)),
      );
    case "open-put":
      return unprepared(() => openLoop(spec.offeredPerSecond, seconds, putOperation(target)));
    case "open-get":
      return unprepared(() => openLoop(spec.offeredPerSecond, seconds, getOperation(target)));
    case "cas":
      return prepareCas(target, spec.concurrency, seconds);
    case "watch":
      return prepareWatch(target, seconds);
  }
}

/**
 * Prepares `spec`, runs it and measures latency and CPU across exactly the run, then
 * releases what the preparation held (watchers), whether or not the run succeeded.
 */
export async function measureRow(target: Target, spec: RowSpec, seconds: number): Promise<Measurement> {
  const prepared = await prepareRow(target, spec, seconds);
  try {
    const pids = target.cluster.pids;
    const serverBefore = serverCpuMicros(pids);
    const clientBefore = clientCpuMicros();
    const started = performance.now();
    const latenciesMs = await prepared.run();
    const elapsedMs = performance.now() - started;
    const clientMicros = clientCpuMicros() - clientBefore;
    const serverMicros = serverCpuMicros(pids) - serverBefore;
    return measurementOf(latenciesMs, elapsedMs, serverMicros, clientMicros);
  } finally {
    await prepared.release();
  }
}
