// A small cluster of RawNodes over in-memory storage with a hand-driven network, scripted by
// text commands. Protocol tests are transcripts: each command and the exact output it produced.
import { decodeConfChange } from "../../src/raft/confchange/codec.js";
import { ReadOnlyOption, type RaftConfig } from "../../src/raft/config.js";
import { ProposalDroppedError } from "../../src/raft/raft.js";
import { RawNode } from "../../src/raft/rawnode.js";
import {
  ConfChangeTransition,
  ConfChangeType,
  EntryType,
  MessageType,
  type ConfChangeSingle,
  type Message,
  type NodeId,
  type Ready,
} from "../../src/raft/types.js";
import type { ReplicaStorage } from "../../src/storage/contracts.js";
import { MemoryStorageEngine } from "../../src/storage/memory.js";
import {
  formatConfState,
  formatEntries,
  formatEntry,
  formatHardState,
  formatMessage,
  formatSnapshot,
} from "./format.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface TestNode {
  id: NodeId;
  raw: RawNode;
  storage: ReplicaStorage;
  engine: MemoryStorageEngine;
  config: RaftConfig;
  /** Application state: the data of every applied normal entry, in order. */
  applied: string[];
}

/** `key=value` options after the positional arguments of a command. */
function parseArgs(words: string[]): { positional: string[]; options: Map<string, string> } {
  const positional: string[] = [];
  const options = new Map<string, string>();
  for (const w of words) {
    const eq = w.indexOf("=");
    if (eq > 0) options.set(w.slice(0, eq), w.slice(eq + 1));
    else positional.push(w);
  }
  return { positional, options };
}

function parseIdList(text: string | undefined): NodeId[] {
  if (!text) return [];
  return text
    .replace(/[()]/g, "")
    .split(/[ ,]+/)
    .filter((s) => s.length > 0)
    .map(Number);
}

export class Interaction {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages sent and not yet delivered, in send order. */
  private inFlight: Message[] = [];
  /** Nodes cut off from everyone else: messages to or from them are dropped. */
  private readonly isolated = new Set<NodeId>();

  run(command: string): string {
    const [name, ...rest] = command.trim().split(/\s+/);
    const { positional, options } = parseArgs(rest);
    const out: string[] = [];
    const id = Number(positional[0]);
    switch (name) {
      case "add-nodes":
        this.addNodes(Number(positional[0]), options, out);
        break;
      case "campaign":
        this.node(id).raw.campaign();
        break;
      case "tick":
        for (let i = 0; i < Number(positional[1] ?? 1); i++) this.node(id).raw.tick();
        break;
      case "tick-heartbeat":
        for (let i = 0; i < this.node(id).config.heartbeatTick; i++) this.node(id).raw.tick();
        break;
      case "tick-election":
        for (let i = 0; i < this.node(id).config.electionTick; i++) this.node(id).raw.tick();
        break;
      case "propose":
        this.guard(out, () => this.node(id).raw.propose(encoder.encode(positional[1] ?? "")));
        break;
      case "propose-conf-change":
        this.guard(out, () =>
          this.node(id).raw.proposeConfChange({
            transition: ConfChangeTransition[(options.get("transition") ?? "Auto") as "Auto"],
            changes: positional.slice(1).map(parseConfChangeSingle),
            context: new Uint8Array(),
          }),
        );
        break;
      case "read-index":
        this.guard(out, () => this.node(id).raw.readIndex(encoder.encode(positional[1] ?? "")));
        break;
      case "advance-lease-clock":
        this.node(id).raw.advanceLeaseClock(Number(positional[1]));
        break;
      case "transfer-leader":
        this.node(id).raw.transferLeader(Number(positional[1]));
        break;
      case "commit-notices": {
        const raw = this.node(id).raw;
        out.push(raw.hasCommitNoticesPending() ? "pending" : "none pending");
        break;
      }
      case "want-commit-notices":
        this.node(id).raw.setWantsCommitNotices(positional[1] === "true");
        break;
      case "flush-commit-notices":
        this.node(id).raw.flushCommitNotices();
        break;
      case "process-ready":
        for (const n of this.select(positional)) this.processReady(n, out);
        break;
      case "deliver-msgs":
        this.deliver(this.select(positional), options.get("drop") === "true", out, options.get("type"));
        break;
      case "stabilize":
        this.stabilize(this.select(positional), out);
        break;
      case "isolate":
        this.isolated.add(id);
        break;
      case "heal":
        // Whatever was sent across the partition was lost with it.
        this.inFlight = this.inFlight.filter((m) => !this.isolated.has(m.from) && !this.isolated.has(m.to));
        this.isolated.clear();
        break;
      case "compact":
        this.compact(this.node(id), Number(positional[1]));
        break;
      case "report-unreachable":
        this.node(id).raw.reportUnreachable(Number(positional[1]));
        break;
      case "raft-state":
        for (const n of this.nodes.values()) {
          const st = n.raw.status();
          out.push(`${n.id}: ${st.softState.role} term=${st.hardState.term} lead=${st.softState.lead}`);
        }
        break;
      case "raft-log":
        out.push(this.raftLog(this.node(id)));
        break;
      case "applied":
        out.push(`${id}: ${this.node(id).applied.join(" ")}`);
        break;
      case "status": {
        const st = this.node(id).raw.status();
        for (const [pid, pr] of st.progress)
          out.push(`${pid}: ${pr.state} match=${pr.match} next=${pr.next}`);
        out.push(formatConfState(st.confState));
        break;
      }
      default:
        throw new Error(`unknown command ${name}`);
    }
    return out.join("\n");
  }

  private guard(out: string[], fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      out.push(`error: ${e.message}`);
    }
  }

  private node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private select(positional: string[]): TestNode[] {
    const ids = positional.map(Number);
    return [...this.nodes.values()].filter((n) => ids.length === 0 || ids.includes(n.id));
  }

  private addNodes(count: number, options: Map<string, string>, out: string[]): void {
    const voters = parseIdList(options.get("voters"));
    const learners = parseIdList(options.get("learners"));
    const first = this.nodes.size + 1;
    for (let id = first; id < first + count; id++) {
      const engine = new MemoryStorageEngine();
      const storage = engine.replica(1);
      storage.setConfState({ voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false });
      const index = Number(options.get("index") ?? 0);
      if (index > 0) {
        // Start from a snapshot at `index` so that nodes share a common log prefix.
        storage.saveSnapshot({
          metadata: {
            index,
            term: 1,
            confState: { voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false },
          },
          data: new Uint8Array(),
        });
      }
      engine.syncNow();
      const config: RaftConfig = {
        id,
        electionTick: Number(options.get("election") ?? 10),
        heartbeatTick: Number(options.get("heartbeat") ?? 1),
        storage,
        random: { nextInt: () => 0 },
        applied: index,
        checkQuorum: options.get("check-quorum") !== "false",
        preVote: options.get("pre-vote") !== "false",
        readOnlyOption:
          options.get("read-only") === "lease" ? ReadOnlyOption.LeaseBased : ReadOnlyOption.Safe,
        maxSizePerMsg: Number(options.get("max-msg-size") ?? 1 << 20),
        maxInflightMsgs: Number(options.get("max-inflight") ?? 256),
        deferCommitNotices: options.get("defer-commit-notices") === "true",
      };
      this.nodes.set(id, { id, raw: new RawNode(config), storage, engine, config, applied: [] });
    }
    out.push(
      `added ${count} node(s): ${formatConfState({ voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false })}`,
    );
  }

  /** Persist, send, apply, advance: what a real node does with each Ready. */
  processReady(n: TestNode, out: string[]): boolean {
    if (!n.raw.hasReady()) return false;
    const rd = n.raw.ready();
    out.push(`== ${n.id} handling Ready`);
    out.push(...describeReady(rd).map((l) => `  ${l}`));
    if (rd.snapshot) {
      n.storage.saveSnapshot(rd.snapshot);
      n.applied = [`<snapshot ${rd.snapshot.metadata.index}>`];
    }
    if (rd.entries.length > 0) n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    n.engine.syncNow();
    for (const m of rd.messages) this.inFlight.push(m);
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) {
        const cs = n.raw.applyConfChange(decodeConfChange(e.data));
        n.storage.setAppliedIndex(e.index, cs);
        out.push(`  ${n.id} applied conf change: ${formatConfState(cs)}`);
      } else if (e.data.length > 0) {
        n.applied.push(decoder.decode(e.data));
      }
    }
    n.raw.advance(rd);
    return true;
  }

  /** Deliver (or drop) the messages in flight to `targets`, only those of `type` if given. */
  private deliver(targets: TestNode[], drop: boolean, out: string[], type?: string): number {
    const ids = new Set(targets.map((n) => n.id));
    const selected = (m: Message): boolean =>
      ids.has(m.to) && (type === undefined || MessageType[m.type] === type);
    const now = this.inFlight.filter(selected);
    this.inFlight = this.inFlight.filter((m) => !selected(m));
    for (const m of now) {
      const cut = this.isolated.has(m.from) || this.isolated.has(m.to);
      if (drop || cut) {
        out.push(`dropped: ${formatMessage(m)}`);
        continue;
      }
      out.push(formatMessage(m));
      this.node(m.to).raw.step(m);
    }
    return now.length;
  }

  private stabilize(targets: TestNode[], out: string[]): void {
    for (let round = 0; round < 1000; round++) {
      let progressed = false;
      for (const n of targets) progressed = this.processReady(n, out) || progressed;
      progressed = this.deliver(targets, false, out) > 0 || progressed;
      if (!progressed) return;
    }
    throw new Error("stabilize did not converge");
  }

  private compact(n: TestNode, index: number): void {
    const st = n.raw.status();
    n.storage.saveSnapshot({
      metadata: { index, term: n.storage.term(index), confState: st.confState },
      data: new Uint8Array(),
    });
    n.storage.compact(index);
    n.engine.syncNow();
  }

  private raftLog(n: TestNode): string {
    const first = n.storage.firstIndex();
    const last = n.storage.lastIndex();
    if (last < first) return `log is empty: first index=${first}, last index=${last}`;
    return n.storage
      .entries(first, last + 1, Number.MAX_SAFE_INTEGER)
      .map(formatEntry)
      .join("\n");
  }
}

function parseConfChangeSingle(word: string): ConfChangeSingle {
  const type = { v: ConfChangeType.AddVoter, l: ConfChangeType.AddLearner, r: ConfChangeType.RemoveNode }[
    word[0]!
  ];
  if (type === undefined) throw new Error(`bad conf change ${word}`);
  return { type, nodeId: Number(word.slice(1)) };
}

function describeReady(rd: Ready): string[] {
  const lines: string[] = [];
  if (rd.softState) lines.push(`Lead:${rd.softState.lead} State:${rd.softState.role}`);
  if (rd.hardState) lines.push(`HardState ${formatHardState(rd.hardState)}`);
  if (rd.snapshot) lines.push(`Snapshot ${formatSnapshot(rd.snapshot)}`);
  if (rd.entries.length > 0) lines.push(`Entries: ${formatEntries(rd.entries)}`);
  if (rd.committedEntries.length > 0) lines.push(`Committed: ${formatEntries(rd.committedEntries)}`);
  for (const rs of rd.readStates) lines.push(`ReadState index=${rs.index} ctx=${decoder.decode(rs.context)}`);
  if (rd.messages.length > 0) {
    lines.push("Messages:");
    for (const m of rd.messages) lines.push(formatMessage(m));
  }
  if (rd.mustSync) lines.push("(sync)");
  return lines;
}
