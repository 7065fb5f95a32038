// URL flag parsing: what etcd-style http://host:port URLs are accepted, and the bind rules.
import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../../src/cli/errors.js";
import { bindAddress, formatHttpUrl, parseUrl, parseUrlList, sameEndpoint } from "../../src/cli/urls.js";

const DIAL = { allowPortZero: false };
const LISTEN = { allowPortZero: true };

test("an http URL with an explicit port parses to its host and port", () => {
  assert.deepEqual(parseUrl("--f", "http://127.0.0.1:2379", DIAL), {
    url: "http://127.0.0.1:2379",
    host: "127.0.0.1",
    port: 2379,
  });
  assert.deepEqual(parseUrl("--f", " http://localhost:2380/ ", DIAL), {
    url: "http://localhost:2380",
    host: "localhost",
    port: 2380,
  });
  assert.deepEqual(parseUrl("--f", "http://[::1]:80", DIAL), {
    url: "http://[::1]:80",
    host: "::1",
    port: 80,
  });
});

test("malformed URLs are usage errors naming the flag", () => {
  const bad: [string, RegExp][] = [
    ["not a url", /is not a URL/],
    ["127.0.0.1:2379", /is not a URL/],
    ["localhost:2379", /must start with http:\/\//],
    ["https://127.0.0.1:2379", /TLS is not supported/],
    ["unix:///tmp/sock", /must start with http:\/\//],
    ["http://127.0.0.1", /has no port/],
    ["http://user:pw@127.0.0.1:1", /credentials/],
    ["http://127.0.0.1:1/path", /without a path/],
    ["http://127.0.0.1:1?x=1", /without a path/],
    ["http://127.0.0.1:99999", /is not a URL/],
    ["http://127.0.0.1:0", /needs a real port/],
  ];
  for (const [text, message] of bad) {
    assert.throws(
      () => parseUrl("--listen-x", text, DIAL),
      (error: unknown) =>
        error instanceof UsageError && /--listen-x/.test(error.message) && message.test(error.message),
      text,
    );
  }
});

test("port 0 is accepted only where a listener may pick its port", () => {
  assert.equal(parseUrl("--f", "http://127.0.0.1:0", LISTEN).port, 0);
});

test("a list is comma-separated and must not be empty", () => {
  assert.deepEqual(
    parseUrlList("--f", "http://127.0.0.1:1,http://127.0.0.2:2", DIAL).map((u) => u.url),
    ["http://127.0.0.1:1", "http://127.0.0.2:2"],
  );
  assert.throws(() => parseUrlList("--f", " , ", DIAL), /expected at least one URL/);
});

test("listeners bind IP addresses; localhost binds 127.0.0.1; host names are refused", () => {
  assert.deepEqual(bindAddress("--f", parseUrl("--f", "http://localhost:2379", DIAL)), {
    host: "127.0.0.1",
    port: 2379,
  });
  assert.deepEqual(bindAddress("--f", parseUrl("--f", "http://0.0.0.0:2379", DIAL)), {
    host: "0.0.0.0",
    port: 2379,
  });
  assert.deepEqual(bindAddress("--f", parseUrl("--f", "http://[::1]:2379", DIAL)), {
    host: "::1",
    port: 2379,
  });
  assert.throws(() => bindAddress("--f", parseUrl("--f", "http://example.com:2379", DIAL)), UsageError);
});

test("localhost and 127.0.0.1 are the same endpoint; other ports or hosts are not", () => {
  assert.ok(sameEndpoint({ host: "localhost", port: 1 }, { host: "127.0.0.1", port: 1 }));
  assert.ok(!sameEndpoint({ host: "localhost", port: 1 }, { host: "127.0.0.1", port: 2 }));
  assert.ok(!sameEndpoint({ host: "10.0.0.1", port: 1 }, { host: "127.0.0.1", port: 1 }));
});

test("bound addresses print as URLs, IPv6 in brackets", () => {
  assert.equal(formatHttpUrl({ host: "127.0.0.1", port: 5 }), "http://127.0.0.1:5");
  assert.equal(formatHttpUrl({ host: "::1", port: 5 }), "http://[::1]:5");
});
