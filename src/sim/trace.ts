/**
 * The run's readable trace: a ring buffer of the most recent events (virtual time + text),
 * kept cheaply (text may be produced lazily) and printed when a seed fails; and the one-line
 * rendering of messages used in it.
 */
import { MessageType, type Message, type NodeId } from "../raft/types.js";

export type TraceText = string | (() => string);

export interface TraceLine {
  readonly time: number;
  readonly text: string;
}

export class TraceBuffer {
  private readonly times: number[];
  private readonly texts: TraceText[];
  private next = 0;
  private count = 0;

  constructor(
    readonly capacity: number,
    private readonly live?: (line: TraceLine) => void,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new Error(`trace capacity must be ≥ 1, got ${capacity}`);
    this.times = new Array<number>(capacity);
    this.texts = new Array<TraceText>(capacity);
  }

  add(time: number, text: TraceText): void {
    if (this.live !== undefined) this.live({ time, text: typeof text === "string" ? text : text() });
    this.times[this.next] = time;
    this.texts[this.next] = text;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** The buffered lines, oldest first. */
  lines(): TraceLine[] {
    const out: TraceLine[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) {
      const slot = (start + i) % this.capacity;
      const text = this.texts[slot]!;
      out.push({ time: this.times[slot]!, text: typeof text === "string" ? text : text() });
    }
    return out;
  }
}

export function formatTraceLine(line: TraceLine): string {
  return `${String(line.time).padStart(7)}ms  ${line.text}`;
}

const MESSAGE_NAMES: Readonly<Record<MessageType, string>> = {
  [MessageType.App]: "App",
  [MessageType.AppResp]: "AppResp",
  [MessageType.Vote]: "Vote",
  [MessageType.VoteResp]: "VoteResp",
  [MessageType.PreVote]: "PreVote",
  [MessageType.PreVoteResp]: "PreVoteResp",
  [MessageType.Heartbeat]: "Heartbeat",
  [MessageType.HeartbeatResp]: "HeartbeatResp",
  [MessageType.Snap]: "Snap",
  [MessageType.Prop]: "Prop",
  [MessageType.ReadIndex]: "ReadIndex",
  [MessageType.ReadIndexResp]: "ReadIndexResp",
  [MessageType.TimeoutNow]: "TimeoutNow",
  [MessageType.TransferLeader]: "TransferLeader",
};

/**
 * A one-line rendering of a message with the fields that matter for its type. `sender` is the
 * node that put it on the wire; a forwarded message shows its originator as well.
 */
export function describeMessage(sender: NodeId, m: Message): string {
  const via = sender === m.from ? "" : ` (from n${m.from})`;
  const parts = [`n${sender}->n${m.to} ${MESSAGE_NAMES[m.type]}${via} t${m.term}`];
  switch (m.type) {
    case MessageType.App:
      parts.push(`prev ${m.index}/t${m.logTerm}`, `entries ${entryRange(m)}`, `commit ${m.commit}`);
      break;
    case MessageType.AppResp:
      parts.push(m.reject ? `reject ${m.index} hint ${m.rejectHint}/t${m.logTerm}` : `match ${m.index}`);
      break;
    case MessageType.Vote:
    case MessageType.PreVote:
      parts.push(`last ${m.index}/t${m.logTerm}`);
      break;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      parts.push(m.reject ? "rejected" : "granted");
      break;
    case MessageType.Heartbeat:
      parts.push(`commit ${m.commit}`);
      break;
    case MessageType.Snap:
      parts.push(`snapshot ${m.snapshot?.metadata.index ?? "?"}/t${m.snapshot?.metadata.term ?? "?"}`);
      break;
    case MessageType.Prop:
      parts.push(`entries ${m.entries.length}`);
      break;
    case MessageType.ReadIndexResp:
      parts.push(`index ${m.index}`);
      break;
    case MessageType.HeartbeatResp:
    case MessageType.ReadIndex:
    case MessageType.TimeoutNow:
    case MessageType.TransferLeader:
      break;
  }
  return parts.join(" ");
}

function entryRange(m: Message): string {
  const first = m.entries[0];
  const last = m.entries[m.entries.length - 1];
  if (first === undefined || last === undefined) return "none";
  return first === last ? `${first.index}/t${first.term}` : `${first.index}..${last.index}/t${last.term}`;
}
