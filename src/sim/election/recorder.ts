/**
 * Records an election run for the oracle: turns each first-applied command into the committed
 * changes of the election's keys (decoded with the recipe's own record decoders) and of the
 * fenced resource key, and takes the candidates' client events, all on one total order.
 */
import { decodeCandidateRecord, decodeLeaderRecord } from "../../recipes/election/records.js";
import { decodeTerm } from "../../recipes/fencing.js";
import type { KvEvent } from "../../kv/results.js";
import type { FirstApply } from "./cluster.js";
import type {
  ClientEvent,
  ClientEventBody,
  CommittedBody,
  CommittedChange,
  ElectionHistory,
} from "./oracle.js";

const decoder = new TextDecoder();

/** What a fenced write stores in the resource key: who wrote it, under which term. */
export interface FencedValue {
  readonly writer: string;
  readonly term: string;
  readonly writeId: string;
}

export function encodeFencedValue(value: FencedValue): string {
  return JSON.stringify(value);
}

export class ElectionRecorder {
  private readonly committed: CommittedChange[] = [];
  private readonly client: ClientEvent[] = [];
  private order = 0;
  /** Records the oracle could not read (a wrong format is a violation of its own). */
  readonly undecodable: string[] = [];

  constructor(
    private readonly subspace: string,
    private readonly resourceKey: string,
    private readonly now: () => number,
  ) {}

  /** One command as first applied: its changes to the keys the oracle follows. */
  applied({ applied, time }: FirstApply): void {
    const { outcome } = applied;
    if (outcome.duplicate) return;
    const revision = outcome.result.revision;
    for (const event of outcome.events) {
      const change = this.changeOf(event);
      if (change !== null) this.committed.push({ ...change, order: this.order++, time, revision });
    }
  }

  event(event: ClientEventBody): void {
    this.client.push({ ...event, order: this.order++, time: this.now() });
  }

  history(): ElectionHistory {
    return { committed: this.committed, client: this.client };
  }

  private changeOf(event: KvEvent): CommittedBody | null {
    const key = decoder.decode(event.kv.key);
    const deleted = event.type === "delete";
    try {
      if (key === this.resourceKey) {
        if (deleted) return null;
        const value = JSON.parse(decoder.decode(event.kv.value)) as FencedValue;
        return { kind: "fenced", writer: value.writer, term: BigInt(value.term), writeId: value.writeId };
      }
      if (!key.startsWith(`${this.subspace}/`)) return null;
      const name = key.slice(this.subspace.length + 1);
      if (name === "leader") {
        if (deleted) return { kind: "leader", record: null };
        const { holder, term, priority } = decodeLeaderRecord(event.kv.value, key);
        return { kind: "leader", record: { holder, term, priority } };
      }
      if (name === "term") {
        return { kind: "term", term: deleted ? null : decodeTerm(event.kv.value, key) };
      }
      if (name.startsWith("candidates/")) {
        const id = name.slice("candidates/".length);
        if (deleted) return { kind: "candidate", id, record: null };
        const { priority } = decodeCandidateRecord(event.kv.value, key);
        return { kind: "candidate", id, record: { priority, registeredAt: event.kv.createRevision } };
      }
      return null;
    } catch (error) {
      this.undecodable.push(`${key}: ${String(error)}`);
      return null;
    }
  }
}
