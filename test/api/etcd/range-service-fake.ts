// The ranges admin service's test fixtures: `FakeRangeAdmin`, an in-memory RangeAdmin that
// splits its ranges the way the coordinator does (left keeps the ids, right gets a fresh id),
// merges a range into its left neighbour (which keeps its ids), refuses like the coordinators
// (boundary, system span, busy; unknown or first range) and can be told to fail with any error; and
// `serveRanges`, a real EtcdServer of a one-node Concord with that admin, on a loopback port.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Concord, type EmbeddedConcord } from "../../../src/api/index.js";
import { etcdClusterId } from "../../../src/api/etcd/context.js";
import {
  InvalidSplitKeyError,
  RangeBusyError,
  type RangeAdmin,
  type RangeInfo,
} from "../../../src/api/etcd/range-service.js";
import { EtcdServer } from "../../../src/api/etcd/server.js";
import { compareBytes } from "../../../src/kv/bytes.js";
import { MergeRefusedError } from "../../../src/placement/split/errors.js";
import { waitFor } from "../helpers.js";

const bytes = (text: string) => new TextEncoder().encode(text);

/** The system span the fake refuses to split: keys below "\x00\x00concord0" ("/" + 1). */
export const FAKE_SYSTEM_END = bytes("\x00\x00concord0");

export class FakeRangeAdmin implements RangeAdmin {
  ranges: RangeInfo[];
  catalogVersion = 7;
  private nextRouteId = 2;
  /** The split keys asked for, in order (only requests that reached the admin). */
  readonly splitCalls: Uint8Array[] = [];
  /** The route ids asked to merge, in order (only requests that reached the admin). */
  readonly mergeCalls: number[] = [];
  listCalls = 0;
  /** When set, every call fails with it (after being recorded). */
  failWith: Error | null = null;
  /** When set, split refuses as busy. */
  busy = false;

  constructor() {
    this.ranges = [
      {
        routeId: 1,
        groupId: 1,
        start: new Uint8Array(0),
        end: null,
        state: "active",
        replicas: [1, 2, 3],
        leader: 2,
        sizeBytes: 1_500_000,
        opsPerSecond: 12.25,
        catalogVersion: this.catalogVersion,
      },
    ];
  }

  list(): Promise<RangeInfo[]> {
    this.listCalls++;
    if (this.failWith !== null) return Promise.reject(this.failWith);
    return Promise.resolve(this.ranges.map((range) => ({ ...range })));
  }

  split(key: Uint8Array): Promise<{ left: RangeInfo; right: RangeInfo }> {
    this.splitCalls.push(key);
    if (this.failWith !== null) return Promise.reject(this.failWith);
    if (compareBytes(key, FAKE_SYSTEM_END) < 0)
      return Promise.reject(new InvalidSplitKeyError("concord: split key lies in the system span"));
    const index = this.ranges.findIndex(
      (range) =>
        compareBytes(range.start, key) <= 0 && (range.end === null || compareBytes(key, range.end) < 0),
    );
    const parent = this.ranges[index]!;
    if (compareBytes(parent.start, key) === 0)
      return Promise.reject(
        new InvalidSplitKeyError(
          `concord: split key is already the start of range ${parent.routeId}; nothing to split`,
        ),
      );
    if (this.busy)
      return Promise.reject(new RangeBusyError(`concord: range ${parent.routeId} is busy; retry`));
    this.catalogVersion++;
    const id = this.nextRouteId++;
    const left: RangeInfo = {
      ...parent,
      end: key,
      sizeBytes: parent.sizeBytes / 2,
      catalogVersion: this.catalogVersion,
    };
    const right: RangeInfo = { ...left, routeId: id, groupId: id, start: key, end: parent.end };
    this.ranges.splice(index, 1, left, right);
    return Promise.resolve({ left, right });
  }

  merge(routeId: number): Promise<{ merged: RangeInfo }> {
    this.mergeCalls.push(routeId);
    if (this.failWith !== null) return Promise.reject(this.failWith);
    const index = this.ranges.findIndex((range) => range.routeId === routeId);
    if (index < 0) return Promise.reject(new MergeRefusedError("unknown-route", routeId, "no such route"));
    if (index === 0)
      return Promise.reject(new MergeRefusedError("first-route", routeId, "no left neighbour"));
    this.catalogVersion++;
    const left = this.ranges[index - 1]!;
    const right = this.ranges[index]!;
    const merged: RangeInfo = {
      ...left,
      end: right.end,
      sizeBytes: left.sizeBytes + right.sizeBytes,
      catalogVersion: this.catalogVersion,
    };
    this.ranges.splice(index - 1, 2, merged);
    return Promise.resolve({ merged });
  }
}

export interface ServedRanges {
  /** "127.0.0.1:port" */
  readonly endpoint: string;
  readonly member: EmbeddedConcord;
  close(): Promise<void>;
}

/**
 * A one-node Concord (no port of its own) and an EtcdServer over its host, given `admin`
 * (or none), fed every connection of a loopback listener.
 */
export async function serveRanges(admin: RangeAdmin | undefined): Promise<ServedRanges> {
  const dataDir = mkdtempSync(join(tmpdir(), "concord-ranges-"));
  const member = await Concord.open({ dataDir, tickMs: 20, clusterId: "ranges-test" });
  let listener: Server | null = null;
  let etcd: EtcdServer | null = null;
  try {
    await waitFor(async () => (await member.status()).leader !== 0, "the member to lead");
    const server = new EtcdServer({
      host: member.host,
      clusterId: etcdClusterId("ranges-test"),
      ...(admin === undefined ? {} : { rangeAdmin: admin }),
    });
    etcd = server;
    const accepting = createServer((socket) => server.injectConnection(socket));
    listener = accepting;
    const port = await new Promise<number>((resolve, reject) => {
      accepting.once("error", reject);
      accepting.listen(0, "127.0.0.1", () => {
        const address = accepting.address();
        resolve(typeof address === "object" && address !== null ? address.port : 0);
      });
    });
    return {
      endpoint: `127.0.0.1:${port}`,
      member,
      close: async () => {
        await closeAll(listener, etcd, member);
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await closeAll(listener, etcd, member);
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

async function closeAll(
  listener: Server | null,
  etcd: EtcdServer | null,
  member: EmbeddedConcord,
): Promise<void> {
  await etcd?.close();
  if (listener !== null) await new Promise<void>((resolve) => listener.close(() => resolve()));
  await member.close();
}
