// The crash test's history recorder classifies outcomes the way the linearizability checker
// needs them: acknowledged → completed with its output, unknown → pending (ret = Infinity, no
// output), certainly without effect → not recorded. A wrong rule here would let the crash test
// pass on a broken store (a lost write recorded as never sent) or fail on a correct one.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AmbiguousResultError,
  ConnectionLostError,
  EndpointsUnavailableError,
  NotLeaderError,
  ProposalDroppedError,
  ServerProtocolError,
} from "../../src/api/errors.js";
import { PENDING, type Operation } from "../../src/sim/linearizability/index.js";
import { HistoryRecorder } from "./workload.js";

function putOf(id: number, call: number, ret: number, acked: unknown): Operation {
  return {
    id,
    clientId: 1,
    key: "k",
    kind: "put",
    value: `v${id}`,
    call,
    ret,
    ...(acked === undefined ? {} : { output: { ok: true } }),
  };
}

test("an acknowledged write is recorded completed, with call before return", async () => {
  const recorder = new HistoryRecorder();
  const outcome = await recorder.record(true, () => Promise.resolve("done"), putOf);
  assert.deepEqual(outcome, { kind: "ok", value: "done" });
  const [op] = recorder.operations;
  assert.ok(op !== undefined);
  assert.deepEqual(op.kind === "put" ? op.output : null, { ok: true });
  assert.ok(Number.isFinite(op.ret) && op.call <= op.ret);
  assert.equal(recorder.counts.acked, 1);
});

test("a write whose outcome is unknown is recorded pending", async () => {
  const unknowns: Array<() => Promise<never>> = [
    () => Promise.reject(new AmbiguousResultError(1, "proposal timed out")),
    () => Promise.reject(new ServerProtocolError("a reply the client cannot place")),
    () => new Promise<never>(() => {}),
  ];
  const recorder = new HistoryRecorder(50);
  for (const body of unknowns) await recorder.record(true, body, putOf);
  assert.equal(recorder.operations.length, unknowns.length);
  for (const op of recorder.operations) {
    assert.equal(op.ret, PENDING);
    assert.equal(op.output, undefined);
  }
  assert.equal(recorder.counts.ambiguous, unknowns.length);
  assert.equal(recorder.counts.timedOut, 1);
});

test("a write refused as certainly not applied, and any failed read, are not recorded", async () => {
  const recorder = new HistoryRecorder(50);
  const refusals = [
    new NotLeaderError(1),
    new ProposalDroppedError(1, "no leader"),
    new EndpointsUnavailableError(["127.0.0.1:1"]),
    new ConnectionLostError("refused before send"),
  ];
  for (const error of refusals) await recorder.record(true, () => Promise.reject(error), putOf);
  await recorder.record(false, () => Promise.reject(new ServerProtocolError("bad read")), putOf);
  await recorder.record(false, () => new Promise<never>(() => {}), putOf);
  assert.deepEqual(recorder.operations, []);
  assert.equal(recorder.counts.failed, refusals.length + 2);
  assert.equal(recorder.counts.errors.get("NotLeaderError"), 1);
});
