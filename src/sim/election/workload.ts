/**
 * The election workload: candidate processes running the real `Election` recipe
 * (src/recipes) on a `ConcordDb` inside simulated client processes, and the client-side
 * faults. Each candidate campaigns with a random priority (sometimes giving up through its
 * abort signal), and while it holds makes fenced writes to one shared resource key carrying
 * `guard(term)` (retrying ambiguous ones with their original request id), then resigns or
 * holds on until it loses. Client faults: a process is frozen longer than the lease (SIGSTOP:
 * none of its timers fire, no answer reaches it), cut off the network while it runs on, or
 * crashed and restarted as a new process under the same candidate id; the current holder is
 * the victim half the time.
 *
 * Everything the oracle needs is recorded: elected (with whether `lost` had already fired),
 * lost, every fenced write with its outcome as the writer knows it, freezes, thaws, crashes.
 *
 * `bug` switches on a deliberately broken client the oracle must catch: "term-reset" deletes
 * `P/term` after each resignation (a ballot that restarts at 1); "grab" acquires by writing
 * the leader record straight away when nobody leads, ignoring the registered priorities;
 * "slow-clock" gives each recipe a monotonic clock running at half speed (a process judging
 * its lease on a skewed clock), so its `lost` fires too late.
 */
import { AmbiguousWriteError } from "../../api/errors.js";
import type { ConcordDb } from "../../api/db.js";
import { putRequest, type TxnOp } from "../../kv/commands.js";
import type { RecipeRuntime } from "../../recipes/client.js";
import { Election, type Leadership } from "../../recipes/election/election.js";
import { encodeLeaderRecord } from "../../recipes/election/records.js";
import { decodeTerm, encodeTerm } from "../../recipes/fencing.js";
import type { SeededRandom } from "../random.js";
import type { Scheduler } from "../scheduler.js";
import type { TraceText } from "../trace.js";
import { SimClientProcess, simConcordDb, type SimEndpoint } from "../runtime/runtime-backend.js";
import { encodeFencedValue, type ElectionRecorder } from "./recorder.js";

export type ElectionBug = "term-reset" | "grab" | "slow-clock";
export const ELECTION_BUGS: readonly ElectionBug[] = ["term-reset", "grab", "slow-clock"];

export interface WorkloadSettings {
  readonly subspace: string;
  readonly resourceKey: string;
  readonly candidates: number;
  readonly leaseSeconds: number;
  readonly renewIntervalMs: number;
  readonly candidateTimeoutMs: number;
  readonly preemptionAllowed: boolean;
  /** Mean virtual time between two client faults (freeze or crash). */
  readonly clientFaultMeanMs: number;
  readonly bug: ElectionBug | null;
  /** Each process talks to one node only (a client given a single endpoint): no fail-over. */
  readonly pinnedClients: boolean;
}

export interface WorkloadCounters {
  elections: number;
  lostSignals: number;
  resignations: number;
  campaignsAborted: number;
  fencedCommitted: number;
  fencedRefused: number;
  fencedUnknown: number;
  ambiguousRetries: number;
  freezes: number;
  isolations: number;
  clientCrashes: number;
}

export function newWorkloadCounters(): WorkloadCounters {
  return {
    elections: 0,
    lostSignals: 0,
    resignations: 0,
    campaignsAborted: 0,
    fencedCommitted: 0,
    fencedRefused: 0,
    fencedUnknown: 0,
    ambiguousRetries: 0,
    freezes: 0,
    isolations: 0,
    clientCrashes: 0,
  };
}

export interface WorkloadContext {
  readonly scheduler: Scheduler;
  readonly settings: WorkloadSettings;
  readonly recorder: ElectionRecorder;
  readonly counters: WorkloadCounters;
  endpoints(): readonly SimEndpoint[];
  trace(text: TraceText): void;
  /** A candidate hit an error no correct run produces. */
  fail(detail: string): void;
}

/** Errors a candidate meets in a faulty run: the recipe's losses and the client's give-ups. */
const EXPECTED_ERRORS = new Set([
  "CampaignAbortedError",
  "ElectionClosedError",
  "LeadershipLostError",
  "NotLeaderError",
  "SessionLostError",
  "AmbiguousWriteError",
  "AmbiguousResultError",
  "ReadTimeoutError",
  "ReplicaStoppedError",
  "ProposalDroppedError",
]);

/** How many times an ambiguous fenced write is sent again with its original request id. */
const FENCED_RETRIES = 3;

/** The "slow-clock" bug: the process's clock and timers as seen on a clock at half speed. */
function halfSpeed(clientProcess: SimClientProcess): RecipeRuntime {
  const start = clientProcess.monotonicNow();
  return {
    monotonicNow: () => start + (clientProcess.monotonicNow() - start) / 2,
    setTimeout: (callback, delayMs) => clientProcess.setTimeout(callback, delayMs * 2),
  };
}

class CandidateProcess {
  readonly clientProcess: SimClientProcess;
  readonly db: ConcordDb;
  readonly election: Election;
  private writes = 0;

  constructor(
    readonly candidate: Candidate,
    readonly name: string,
    private readonly context: WorkloadContext,
    firstNode: number,
  ) {
    this.clientProcess = new SimClientProcess(name, context.scheduler);
    this.db = simConcordDb(
      name,
      {
        clientProcess: this.clientProcess,
        endpoints: () =>
          context.settings.pinnedClients
            ? context.endpoints().filter((e) => e.id === firstNode)
            : context.endpoints(),
        firstNode,
        requestTimeoutMs: 2_000,
        trace: (text) => context.trace(text),
      },
      { maxAttempts: 6, initialBackoffMs: 20, maxBackoffMs: 200 },
    ).db;
    this.election = new Election(this.db, {
      subspace: context.settings.subspace,
      candidateId: candidate.id,
      runtime: context.settings.bug === "slow-clock" ? halfSpeed(this.clientProcess) : this.clientProcess,
    });
  }

  get holding(): boolean {
    return this.election.leadership !== null && !this.clientProcess.crashed;
  }

  private record(event: Parameters<ElectionRecorder["event"]>[0]): void {
    this.context.recorder.event(event);
  }

  async life(random: SeededRandom): Promise<void> {
    const { settings } = this.context;
    for (;;) {
      try {
        await this.election.configure({
          leaseSeconds: settings.leaseSeconds,
          renewIntervalMs: settings.renewIntervalMs,
          candidateTimeoutMs: settings.candidateTimeoutMs,
          preemptionAllowed: settings.preemptionAllowed,
        });
        break;
      } catch (error) {
        this.unexpected(error);
        await this.clientProcess.sleep(100);
      }
    }
    for (;;) {
      await this.clientProcess.sleep(random.intBetween(0, 300));
      try {
        await this.round(random);
      } catch (error) {
        this.unexpected(error);
        await this.clientProcess.sleep(100);
      }
    }
  }

  /** One campaign and, if it wins, one tenure. */
  private async round(random: SeededRandom): Promise<void> {
    const priority = random.intBetween(1, 3);
    const patience = new AbortController();
    const giveUp = this.clientProcess.setTimeout(() => patience.abort(), random.intBetween(1_000, 6_000));
    let leadership: Leadership;
    try {
      leadership =
        this.context.settings.bug === "grab"
          ? await this.grabOrCampaign(priority, patience.signal)
          : await this.election.campaign(this.name, { priority, signal: patience.signal });
    } catch (error) {
      this.context.counters.campaignsAborted++;
      this.unexpected(error);
      return;
    } finally {
      giveUp.cancel();
    }
    this.elected(leadership);
    const writes = random.intBetween(1, 6);
    for (let i = 0; i < writes && !leadership.lost.aborted; i++) {
      await this.clientProcess.sleep(random.intBetween(30, 400));
      if (!leadership.lost.aborted) await this.fencedWrite(leadership);
    }
    if (leadership.lost.aborted) return;
    if (random.chance(0.7)) {
      await this.election.resign();
      this.context.counters.resignations++;
      this.context.trace(`${this.name} resigned term ${leadership.term}`);
      if (this.context.settings.bug === "term-reset")
        await this.db.delete(`${this.context.settings.subspace}/term`);
    } else {
      await new Promise<void>((resolve) => leadership.lost.addEventListener("abort", () => resolve()));
    }
  }

  private elected(leadership: Leadership): void {
    const { term, lost } = leadership;
    this.context.counters.elections++;
    this.context.trace(`${this.name} elected, term ${term}${lost.aborted ? " (already lost)" : ""}`);
    this.record({
      kind: "elected",
      candidate: this.candidate.id,
      process: this.name,
      term,
      lostAlready: lost.aborted,
    });
    const onLost = (): void => {
      this.context.counters.lostSignals++;
      this.context.trace(
        `${this.name} lost term ${term}: ${String((lost.reason as Error | undefined)?.message)}`,
      );
      this.record({ kind: "lost", candidate: this.candidate.id, process: this.name, term });
    };
    if (lost.aborted) onLost();
    else lost.addEventListener("abort", onLost, { once: true });
  }

  /** One txn guarded by the term; an ambiguous one is sent again with its original id. */
  private async fencedWrite(leadership: Leadership): Promise<void> {
    const { counters, settings } = this.context;
    const writeId = `${this.name}.w${++this.writes}`;
    const value = encodeFencedValue({ writer: this.candidate.id, term: String(leadership.term), writeId });
    const spec = {
      compares: leadership.guard(),
      success: [
        putRequest({
          key: new TextEncoder().encode(settings.resourceKey),
          value: new TextEncoder().encode(value),
        }),
      ],
    };
    let outcome: "committed" | "refused" | "unknown";
    try {
      outcome = (await this.db.txn(spec)).succeeded ? "committed" : "refused";
    } catch (error) {
      outcome = error instanceof AmbiguousWriteError ? await this.retryAmbiguous(error) : "refused";
      if (!(error instanceof AmbiguousWriteError)) this.unexpected(error);
    }
    if (outcome === "committed") counters.fencedCommitted++;
    else if (outcome === "refused") counters.fencedRefused++;
    else counters.fencedUnknown++;
    this.record({
      kind: "fenced",
      candidate: this.candidate.id,
      process: this.name,
      term: leadership.term,
      writeId,
      outcome,
    });
  }

  private async retryAmbiguous(first: AmbiguousWriteError): Promise<"committed" | "refused" | "unknown"> {
    let error: unknown = first;
    for (let attempt = 0; attempt < FENCED_RETRIES && error instanceof AmbiguousWriteError; attempt++) {
      this.context.counters.ambiguousRetries++;
      try {
        const result = await this.db.retry(error);
        // A StaleSequence answer: the result is gone (the handle wrote since); unknown.
        if (result.response.kind !== "txn") return "unknown";
        return result.response.succeeded ? "committed" : "refused";
      } catch (next) {
        error = next;
      }
    }
    return "unknown";
  }

  /**
   * The "grab" bug: when nobody leads, take the leadership with one txn that only checks the
   * leader key is absent — no look at who else is registered — then carry on as the recipe.
   */
  private async grabOrCampaign(priority: number, signal: AbortSignal): Promise<Leadership> {
    const { subspace } = this.context.settings;
    const leaderKey = `${subspace}/leader`;
    const [leader, termKv] = await Promise.all([this.db.get(leaderKey), this.db.get(`${subspace}/term`)]);
    if (leader === null) {
      const term = decodeTerm(termKv?.value) + 1n;
      const lease = await this.db.leaseGrant(this.context.settings.leaseSeconds);
      const record = encodeLeaderRecord({
        holder: this.candidate.id,
        term,
        priority: 99,
        lease: lease.id,
        value: new Uint8Array(0),
      });
      const success: TxnOp[] = [
        putRequest({ key: new TextEncoder().encode(`${subspace}/term`), value: encodeTerm(term) }),
        putRequest({ key: new TextEncoder().encode(leaderKey), value: record, lease: lease.id }),
      ];
      await this.db.txn({ compares: [], success });
    }
    return this.election.campaign(this.name, { priority, signal });
  }

  private unexpected(error: unknown): void {
    const name = error instanceof Error ? error.name : typeof error;
    // A write attached to a lease that expired while the write was retried (TTLs here are 1 s).
    const leaseGone = name === "KvError" && /lease not found/.test((error as Error).message);
    if (EXPECTED_ERRORS.has(name) || leaseGone) {
      this.context.trace(`${this.name}: ${name}: ${(error as Error).message}`);
      return;
    }
    this.context.fail(`${this.name}: ${String(error)}${error instanceof Error ? `\n${error.stack}` : ""}`);
  }
}

/** One candidate id and its successive processes. */
export class Candidate {
  current: CandidateProcess | null = null;
  private incarnations = 0;

  constructor(
    readonly id: string,
    private readonly random: SeededRandom,
    private readonly context: WorkloadContext,
  ) {}

  start(): void {
    const endpoints = this.context.endpoints();
    const firstNode = this.random.pick(endpoints).id;
    const name = `${this.id}#${++this.incarnations}`;
    const candidateProcess = new CandidateProcess(this, name, this.context, firstNode);
    this.current = candidateProcess;
    candidateProcess
      .life(this.random.fork(name))
      .catch((error: unknown) => this.context.fail(`${name}: ${String(error)}`));
  }

  freeze(ms: number): void {
    const candidateProcess = this.current;
    if (
      candidateProcess === null ||
      candidateProcess.clientProcess.crashed ||
      candidateProcess.clientProcess.frozen
    )
      return;
    this.context.counters.freezes++;
    this.context.trace(`${candidateProcess.name} frozen for ${ms} ms`);
    this.context.recorder.event({ kind: "frozen", candidate: this.id, process: candidateProcess.name });
    candidateProcess.clientProcess.freeze(ms);
    this.context.scheduler.after(ms, () => {
      if (candidateProcess.clientProcess.crashed) return;
      this.context.trace(`${candidateProcess.name} thawed`);
      this.context.recorder.event({ kind: "thawed", candidate: this.id, process: candidateProcess.name });
    });
  }

  /** The end of the run: the process stops for good (recorded as a crash, not counted as a fault). */
  stop(): void {
    this.kill();
  }

  isolate(ms: number): void {
    const candidateProcess = this.current;
    if (candidateProcess === null || candidateProcess.clientProcess.crashed) return;
    this.context.counters.isolations++;
    this.context.trace(`${candidateProcess.name} cut off the network for ${ms} ms`);
    candidateProcess.clientProcess.isolate(ms);
  }

  crash(): void {
    if (this.kill()) this.context.counters.clientCrashes++;
  }

  private kill(): boolean {
    const candidateProcess = this.current;
    if (candidateProcess === null || candidateProcess.clientProcess.crashed) return false;
    this.context.trace(`${candidateProcess.name} crashed`);
    candidateProcess.clientProcess.crash();
    this.context.recorder.event({ kind: "crashed", candidate: this.id, process: candidateProcess.name });
    return true;
  }
}

/** Freezes and crashes of candidate processes, until `active()` turns false. */
export function startClientFaults(
  context: WorkloadContext,
  candidates: readonly Candidate[],
  random: SeededRandom,
  active: () => boolean,
): void {
  const leaseMs = context.settings.leaseSeconds * 1000;
  const next = (): void => {
    context.scheduler.after(random.exponential(context.settings.clientFaultMeanMs), () => {
      if (!active()) return;
      const holder = candidates.find((c) => c.current?.holding === true);
      const victim = holder !== undefined && random.chance(0.5) ? holder : random.pick(candidates);
      const roll = random.float();
      if (roll < 0.4) {
        victim.freeze(random.intBetween(leaseMs + 200, leaseMs * 2 + 500));
      } else if (roll < 0.7) {
        victim.isolate(random.intBetween(leaseMs / 2, leaseMs * 2 + 500));
      } else {
        victim.crash();
        context.scheduler.after(random.intBetween(100, 1_500), () => {
          if (active()) victim.start();
        });
      }
      next();
    });
  };
  next();
}
