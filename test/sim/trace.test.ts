// Unit tests for the trace ring buffer and the message rendering used in failure reports.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MessageType, message } from "../../src/raft/types.js";
import { TraceBuffer, describeMessage, formatTraceLine, type TraceLine } from "../../src/sim/trace.js";

test("the buffer keeps the newest lines, oldest first", () => {
  const buffer = new TraceBuffer(3);
  assert.deepEqual(buffer.lines(), []);
  for (let i = 1; i <= 5; i++) buffer.add(i, `line ${i}`);
  assert.deepEqual(
    buffer.lines().map((l) => l.text),
    ["line 3", "line 4", "line 5"],
  );
  assert.throws(() => new TraceBuffer(0));
});

test("lazy text is rendered only when read, and live listeners see every line", () => {
  const seen: TraceLine[] = [];
  let rendered = 0;
  const quiet = new TraceBuffer(2);
  quiet.add(1, () => {
    rendered++;
    return "lazy";
  });
  assert.equal(rendered, 0);
  assert.equal(quiet.lines()[0]?.text, "lazy");
  assert.equal(rendered, 1);
  const live = new TraceBuffer(1, (line) => seen.push(line));
  live.add(1, "a");
  live.add(2, () => "b");
  assert.deepEqual(seen, [
    { time: 1, text: "a" },
    { time: 2, text: "b" },
  ]);
  assert.equal(formatTraceLine({ time: 42, text: "x" }), "     42ms  x");
});

test("messages render with the fields that matter, and forwarded ones name their originator", () => {
  const app = message({
    type: MessageType.App,
    from: 1,
    to: 2,
    term: 3,
    index: 4,
    logTerm: 2,
    commit: 4,
    entries: [
      { index: 5, term: 3, type: 0, data: new Uint8Array() },
      { index: 6, term: 3, type: 0, data: new Uint8Array() },
    ],
  });
  assert.equal(describeMessage(1, app), "n1->n2 App t3 prev 4/t2 entries 5..6/t3 commit 4");
  const reject = message({
    type: MessageType.AppResp,
    from: 2,
    to: 1,
    term: 3,
    index: 9,
    reject: true,
    rejectHint: 5,
  });
  assert.equal(describeMessage(2, reject), "n2->n1 AppResp t3 reject 9 hint 5/t0");
  const forwarded = message({ type: MessageType.Prop, from: 3, to: 1, entries: [app.entries[0]!] });
  assert.equal(describeMessage(2, forwarded), "n2->n1 Prop (from n3) t0 entries 1");
});
