// Readable one-line renderings of raft values for protocol transcripts.
import { decodeConfChange } from "../../src/raft/confchange/codec.js";
import {
  ConfChangeTransition,
  ConfChangeType,
  EntryType,
  MessageType,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type Snapshot,
} from "../../src/raft/types.js";

const decoder = new TextDecoder();

export function formatBytes(data: Uint8Array): string {
  return JSON.stringify(decoder.decode(data));
}

export function formatConfChange(cc: ConfChange): string {
  if (cc.changes.length === 0) return "leave-joint";
  const changes = cc.changes.map((c) => {
    const prefix =
      c.type === ConfChangeType.AddVoter ? "v" : c.type === ConfChangeType.AddLearner ? "l" : "r";
    return `${prefix}${c.nodeId}`;
  });
  const transition =
    cc.transition === ConfChangeTransition.Auto ? "" : ` ${ConfChangeTransition[cc.transition]}`;
  return changes.join(" ") + transition.toLowerCase();
}

export function formatEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange)
    return `${e.term}/${e.index} conf(${formatConfChange(decodeConfChange(e.data))})`;
  return e.data.length === 0 ? `${e.term}/${e.index} noop` : `${e.term}/${e.index} ${formatBytes(e.data)}`;
}

export function formatEntries(entries: readonly Entry[]): string {
  return entries.map(formatEntry).join(", ");
}

export function formatConfState(cs: ConfState): string {
  const parts = [`voters=(${cs.voters.join(" ")})`];
  if (cs.votersOutgoing.length > 0) parts[0] += `&&(${cs.votersOutgoing.join(" ")})`;
  if (cs.learners.length > 0) parts.push(`learners=(${cs.learners.join(" ")})`);
  if (cs.learnersNext.length > 0) parts.push(`learners_next=(${cs.learnersNext.join(" ")})`);
  if (cs.autoLeave) parts.push("autoleave");
  return parts.join(" ");
}

export function formatHardState(hs: HardState): string {
  return `term=${hs.term} vote=${hs.vote} commit=${hs.commit}`;
}

export function formatSnapshot(s: Snapshot): string {
  return `snapshot index=${s.metadata.index} term=${s.metadata.term} ${formatConfState(s.metadata.confState)}`;
}

export function formatMessage(m: Message): string {
  let out = `${m.from}->${m.to} ${MessageType[m.type]} term=${m.term}`;
  switch (m.type) {
    case MessageType.App:
      out += ` log=${m.logTerm}/${m.index} commit=${m.commit}`;
      if (m.entries.length > 0) out += ` entries=[${formatEntries(m.entries)}]`;
      if (m.context.length > 0) out += " notice";
      break;
    case MessageType.AppResp:
      out += m.reject ? ` rejected index=${m.index} hint=${m.logTerm}/${m.rejectHint}` : ` index=${m.index}`;
      break;
    case MessageType.Vote:
    case MessageType.PreVote:
      out += ` log=${m.logTerm}/${m.index}`;
      if (m.context.length > 0) out += " transfer";
      break;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      out += m.reject ? " rejected" : " granted";
      break;
    case MessageType.Heartbeat:
      out += ` commit=${m.commit}`;
      if (m.context.length > 0) out += ` ctx=${formatBytes(m.context)}`;
      break;
    case MessageType.HeartbeatResp:
      if (m.context.length > 0) out += ` ctx=${formatBytes(m.context)}`;
      break;
    case MessageType.Snap:
      out += ` ${formatSnapshot(m.snapshot!)}`;
      break;
    case MessageType.Prop:
      out += ` entries=[${formatEntries(m.entries)}]`;
      break;
    case MessageType.ReadIndex:
    case MessageType.ReadIndexResp:
      if (m.type === MessageType.ReadIndexResp) out += ` index=${m.index} commit=${m.commit}`;
      out += ` ctx=${formatBytes(m.context)}`;
      break;
    case MessageType.TimeoutNow:
    case MessageType.TransferLeader:
      break;
  }
  return out;
}
