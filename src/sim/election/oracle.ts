/**
 * The election oracle: a pure function from one recorded run to the safety violations in it.
 *
 * The history holds two streams on one total order (`order`: a counter shared by both, so
 * "before" needs no tie-break on virtual time):
 * - the committed order of the election's keys — every change to `P/leader`, `P/term`,
 *   `P/candidates/<id>` and every committed fenced write, in log order, as the state machine
 *   first applied it (decoded by the workload, so the oracle knows no record format);
 * - what the candidate processes saw and did — elected(term), lost(term), fenced writes with
 *   their outcome, freezes and thaws (SIGSTOP, SIGCONT) and crashes.
 *
 * Checks (each violation names one):
 * - `one holder per term`: no term is ever held by two candidates;
 * - `term order`: a leader record either keeps the current (holder, term) or carries a term
 *   above every earlier one; the term counter only grows and is never deleted;
 * - `stale fenced write`: a fenced write commits only while its writer holds that very term;
 *   the writer's own report agrees with the log (committed ⇔ in the log);
 * - `phantom leader`: a process told it was elected holds a committed record of that term,
 *   and was not told so after a successor had been elected unless its `lost` had already fired;
 * - `lost before successor`: the previous holder's `lost` fired before the successor's record
 *   committed — unless that process was frozen or dead then: a frozen one must fire `lost` at
 *   its thaw at the latest;
 * - `priority order`: an acquirer is registered, its leader record carries its registered
 *   priority, and no other registered candidate has a higher priority, or an equal one
 *   registered earlier (FIFO).
 */

export interface LeaderRecordView {
  readonly holder: string;
  readonly term: bigint;
  readonly priority: number;
}

export interface CandidateRecordView {
  readonly priority: number;
  /** The candidate key's create revision: registration order. */
  readonly registeredAt: bigint;
}

interface Ordered {
  /** Position in the run's total order of recorded facts. */
  readonly order: number;
  /** Virtual milliseconds, for reports. */
  readonly time: number;
}

/** What one committed change did. `null` records are deletions. */
export type CommittedBody =
  | { readonly kind: "leader"; readonly record: LeaderRecordView | null }
  | { readonly kind: "term"; readonly term: bigint | null }
  | { readonly kind: "candidate"; readonly id: string; readonly record: CandidateRecordView | null }
  | { readonly kind: "fenced"; readonly writer: string; readonly term: bigint; readonly writeId: string };

/** One committed change, in log order. */
export type CommittedChange = Ordered & { readonly revision: bigint } & CommittedBody;

/** What a candidate process (`process`: one incarnation of candidate `candidate`) saw or did. */
export type ClientEventBody = { readonly candidate: string; readonly process: string } & (
  | { readonly kind: "elected"; readonly term: bigint; readonly lostAlready: boolean }
  | { readonly kind: "lost"; readonly term: bigint }
  | {
      readonly kind: "fenced";
      readonly term: bigint;
      readonly writeId: string;
      readonly outcome: "committed" | "refused" | "unknown";
    }
  | { readonly kind: "frozen" }
  | { readonly kind: "thawed" }
  | { readonly kind: "crashed" }
);

export type ClientEvent = Ordered & ClientEventBody;

export interface ElectionHistory {
  readonly committed: readonly CommittedChange[];
  readonly client: readonly ClientEvent[];
}

export type ElectionCheck =
  | "one holder per term"
  | "term order"
  | "stale fenced write"
  | "phantom leader"
  | "lost before successor"
  | "priority order";

export interface ElectionViolation {
  readonly check: ElectionCheck;
  readonly detail: string;
  readonly time: number;
}

/** The holder and term of one acquisition, with where it committed. */
interface Acquisition {
  readonly holder: string;
  readonly term: bigint;
  readonly order: number;
  readonly time: number;
}

export function checkElectionHistory(history: ElectionHistory): ElectionViolation[] {
  const violations: ElectionViolation[] = [];
  const report = (check: ElectionCheck, time: number, detail: string): void => {
    violations.push({ check, time, detail });
  };
  const committed = [...history.committed].sort((a, b) => a.order - b.order);
  const client = [...history.client].sort((a, b) => a.order - b.order);

  const acquisitions = replayCommitted(committed, client, report);
  checkElectedProcesses(acquisitions, client, report);
  checkLostBeforeSuccessor(acquisitions, client, report);
  return violations;
}

type Report = (check: ElectionCheck, time: number, detail: string) => void;

/**
 * Walks the committed order once, keeping the current leader record, term counter and
 * registered candidates; returns every acquisition (a leader record with a new term).
 */
function replayCommitted(
  committed: readonly CommittedChange[],
  client: readonly ClientEvent[],
  report: Report,
): Acquisition[] {
  const acquisitions: Acquisition[] = [];
  const holderOfTerm = new Map<bigint, string>();
  const candidates = new Map<string, CandidateRecordView>();
  const fencedInLog = new Set<string>();
  let leader: LeaderRecordView | null = null;
  let maxTerm = 0n;
  let termCounter: bigint | null = null;
  for (let i = 0; i < committed.length; i++) {
    const change = committed[i]!;
    const at = `at revision ${change.revision} (${change.time} ms)`;
    switch (change.kind) {
      case "candidate":
        if (change.record === null) candidates.delete(change.id);
        else candidates.set(change.id, change.record);
        break;
      case "term":
        if (change.term === null) {
          report("term order", change.time, `the term counter was deleted ${at} (it was ${termCounter})`);
        } else if (termCounter !== null && change.term <= termCounter) {
          report(
            "term order",
            change.time,
            `the term counter went from ${termCounter} to ${change.term} ${at}`,
          );
        }
        termCounter = change.term;
        break;
      case "fenced": {
        fencedInLog.add(change.writeId);
        if (leader === null || leader.holder !== change.writer || leader.term !== change.term) {
          const current = leader === null ? "no holder" : `${leader.holder} holds term ${leader.term}`;
          report(
            "stale fenced write",
            change.time,
            `${change.writer}'s write ${change.writeId} under term ${change.term} committed ${at} while ${current}`,
          );
        }
        break;
      }
      case "leader": {
        const record = change.record;
        if (record === null) {
          leader = null;
          break;
        }
        const keeps = leader !== null && leader.holder === record.holder && leader.term === record.term;
        if (!keeps) {
          if (record.term <= maxTerm) {
            report(
              "term order",
              change.time,
              `${record.holder} took term ${record.term} ${at}, not above the earlier term ${maxTerm}`,
            );
          }
          const known = holderOfTerm.get(record.term);
          if (known !== undefined && known !== record.holder) {
            report(
              "one holder per term",
              change.time,
              `${known} and ${record.holder} both hold term ${record.term}`,
            );
          }
          holderOfTerm.set(record.term, record.holder);
          // The rest of this revision (the acquirer's own candidate record, the counter) counts too.
          const sameRevision = committed.slice(i + 1).filter((c) => c.revision === change.revision);
          checkPriority(record, candidatesAfter(candidates, sameRevision), change, report);
          acquisitions.push({
            holder: record.holder,
            term: record.term,
            order: change.order,
            time: change.time,
          });
        }
        if (record.term > maxTerm) maxTerm = record.term;
        leader = record;
        break;
      }
    }
  }
  for (const event of client) {
    if (event.kind !== "fenced" || event.outcome === "unknown") continue;
    const inLog = fencedInLog.has(event.writeId);
    if (inLog !== (event.outcome === "committed")) {
      report(
        "stale fenced write",
        event.time,
        `${event.process} was told its write ${event.writeId} (term ${event.term}) ${event.outcome}, ` +
          `but the log ${inLog ? "has" : "does not have"} it`,
      );
    }
  }
  return acquisitions;
}

function candidatesAfter(
  candidates: ReadonlyMap<string, CandidateRecordView>,
  sameRevision: readonly CommittedChange[],
): Map<string, CandidateRecordView> {
  const after = new Map(candidates);
  for (const change of sameRevision) {
    if (change.kind !== "candidate") continue;
    if (change.record === null) after.delete(change.id);
    else after.set(change.id, change.record);
  }
  return after;
}

function checkPriority(
  record: LeaderRecordView,
  candidates: ReadonlyMap<string, CandidateRecordView>,
  change: CommittedChange,
  report: Report,
): void {
  const own = candidates.get(record.holder);
  const at = `at revision ${change.revision}`;
  if (own === undefined) {
    report(
      "priority order",
      change.time,
      `${record.holder} took term ${record.term} ${at} without being registered`,
    );
    return;
  }
  if (own.priority !== record.priority) {
    report(
      "priority order",
      change.time,
      `${record.holder} took term ${record.term} ${at} with priority ${record.priority}, registered ${own.priority}`,
    );
  }
  for (const [id, other] of candidates) {
    if (id === record.holder) continue;
    const better =
      other.priority > own.priority ||
      (other.priority === own.priority && other.registeredAt < own.registeredAt);
    if (better) {
      report(
        "priority order",
        change.time,
        `${record.holder} (priority ${own.priority}, registered at ${own.registeredAt}) took term ` +
          `${record.term} ${at} over ${id} (priority ${other.priority}, registered at ${other.registeredAt})`,
      );
    }
  }
}

/** Each elected event matches a committed acquisition that came before it, and was not late. */
function checkElectedProcesses(
  acquisitions: readonly Acquisition[],
  client: readonly ClientEvent[],
  report: Report,
): void {
  for (const event of client) {
    if (event.kind !== "elected") continue;
    const index = acquisitions.findLastIndex(
      (a) => a.term === event.term && a.holder === event.candidate && a.order < event.order,
    );
    const acquisition = acquisitions[index];
    if (acquisition === undefined) {
      report(
        "phantom leader",
        event.time,
        `${event.process} was told it holds term ${event.term}, which no committed record of it carries`,
      );
      continue;
    }
    const successor = acquisitions[index + 1];
    if (successor !== undefined && successor.order < event.order && !event.lostAlready) {
      report(
        "phantom leader",
        event.time,
        `${event.process} was told it holds term ${event.term} after ${successor.holder} took term ` +
          `${successor.term} (${successor.time} ms), and its lost signal had not fired`,
      );
    }
  }
}

/** The process elected to each term fired `lost` before the next acquisition committed. */
function checkLostBeforeSuccessor(
  acquisitions: readonly Acquisition[],
  client: readonly ClientEvent[],
  report: Report,
): void {
  for (let i = 0; i + 1 < acquisitions.length; i++) {
    const previous = acquisitions[i]!;
    const successor = acquisitions[i + 1]!;
    const elected = client.find(
      (e) => e.kind === "elected" && e.term === previous.term && e.candidate === previous.holder,
    );
    // Elected but never told (crashed first, or told late: checked above): nothing to signal.
    if (elected === undefined || elected.order > successor.order) continue;
    const own = client.filter((e) => e.process === elected.process);
    const lost = own.find((e) => e.kind === "lost" && e.term === previous.term);
    const crashed = own.find((e) => e.kind === "crashed");
    if (lost !== undefined && lost.order < successor.order) continue;
    if (crashed !== undefined && crashed.order < successor.order) continue;
    const frozenThen = own
      .filter((e) => e.order < successor.order)
      .findLast((e) => e.kind === "frozen" || e.kind === "thawed");
    if (frozenThen?.kind === "frozen") {
      // Frozen when the successor won: it must learn of the loss the moment it runs again.
      const thaw = own.find((e) => e.kind === "thawed" && e.order > successor.order);
      const thawTime = thaw?.time ?? Infinity;
      const intime =
        (lost !== undefined && lost.time <= thawTime) || (crashed !== undefined && crashed.time <= thawTime);
      if (intime || thaw === undefined) continue;
      report(
        "lost before successor",
        successor.time,
        `${elected.process} (term ${previous.term}) was frozen until ${thawTime} ms while ` +
          `${successor.holder} took term ${successor.term}, and its lost signal ` +
          (lost === undefined ? "never fired" : `fired only at ${lost.time} ms`),
      );
      continue;
    }
    report(
      "lost before successor",
      successor.time,
      `${successor.holder} took term ${successor.term} at ${successor.time} ms while ${elected.process}'s ` +
        `lost signal for term ${previous.term} ` +
        (lost === undefined ? "never fired" : `fired only at ${lost.time} ms`),
    );
  }
}
