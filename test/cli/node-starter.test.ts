// The production starter's small translations: addresses in the embedded API's "host:port"
// form, and warnings as JSON lines on stderr.
import assert from "node:assert/strict";
import { test } from "node:test";
import { hostPortText, stderrLogger } from "../../src/cli/node-starter.js";

test("addresses become host:port, IPv6 hosts in brackets", () => {
  assert.equal(hostPortText({ host: "127.0.0.1", port: 2380 }), "127.0.0.1:2380");
  assert.equal(hostPortText({ host: "::1", port: 2380 }), "[::1]:2380");
});

test("warnings are written as one JSON line each; info is not", () => {
  const written: string[] = [];
  const logger = stderrLogger((text) => written.push(text));
  logger.warn({ peer: 2 }, "unreachable");
  logger.info({ peer: 2 }, "connected");
  assert.deepEqual(written, [`${JSON.stringify({ level: "warn", message: "unreachable", peer: 2 })}\n`]);
});
