// The `etcd3` npm client (a client nobody on this team wrote) against three real `concord`
// processes: key-value calls, txn, watch, leases, compaction, cluster and maintenance calls,
// its Lock recipe with several contenders (mutual exclusion checked with a shared count of
// holders) and its Election recipe with several campaigners (one leader at a time, resign hands
// over, observe sees each change), and all of it after the leader is SIGKILLed. One cluster for
// the whole file; every wait and every contention loop is bounded in count and time.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  Etcd3,
  EtcdLeaseInvalidError,
  EtcdLockFailedError,
  GRPCOutOfRangeError,
  type Campaign,
  type IOptions,
  type IKeyValue,
  type Watcher,
} from "etcd3";
import { freePort } from "../free-port.js";
import { sleep, within } from "../process/process-cluster.js";
import { ClientCluster, clientUrl, eventually, FOUNDERS, TARGET, until } from "./harness.js";

const SHORT_WAIT_MS = 30_000;
const LONG_WAIT_MS = 90_000;
/** The bound on any one test, so a hung call fails the test instead of the suite. */
const TEST_TIMEOUT_MS = 300_000;
const CALL_DEADLINE_MS = 20_000;
const LOCK_CONTENDERS = 4;
const LOCKS_PER_CONTENDER = 3;
const LOCK_ATTEMPTS_PER_CONTENDER = 400;
const CAMPAIGNERS = 3;

/** One event a watcher delivered, flattened for comparison. */
interface SeenEvent {
  readonly type: "put" | "delete";
  readonly key: string;
  readonly value: string;
  readonly previous: string | undefined;
}

function collect(watcher: Watcher): SeenEvent[] {
  const events: SeenEvent[] = [];
  const record = (type: SeenEvent["type"]) => (kv: IKeyValue, previous?: IKeyValue) => {
    events.push({
      type,
      key: kv.key.toString(),
      value: kv.value.toString(),
      previous: previous?.value.toString(),
    });
  };
  watcher.on("put", record("put"));
  watcher.on("delete", record("delete"));
  return events;
}

async function waitForEvents(events: SeenEvent[], count: number, what: string): Promise<void> {
  await until(what, SHORT_WAIT_MS, () => events.length >= count);
}

describe(`the etcd3 npm client against three ${TARGET} processes`, () => {
  let cluster: ClientCluster;
  let client: Etcd3;
  let failed = false;
  let started = false;
  const extraClients: Etcd3[] = [];

  function hosts(endpoints?: readonly string[]): string[] {
    return (endpoints ?? cluster.allEndpoints).map((e) => `http://${e}`);
  }

  function options(endpoints?: readonly string[]): IOptions {
    return {
      hosts: hosts(endpoints),
      dialTimeout: 5_000,
      // Unary calls get a deadline so nothing waits forever; streams (watch, keep-alive) run on.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS }),
    };
  }

  function newClient(endpoints?: readonly string[]): Etcd3 {
    const made = new Etcd3(options(endpoints));
    extraClients.push(made);
    return made;
  }

  before(async () => {
    cluster = await ClientCluster.start("etcd3");
    started = true;
    client = new Etcd3(options());
  });

  after(() => {
    // A cluster that failed to start has already been stopped and cleaned up.
    if (!started) return;
    if (failed) console.error(`member logs:\n${cluster.logs()}`);
    client.close();
    for (const extra of extraClients) extra.close();
    cluster.close();
  });

  /** A test whose failure also prints the members' logs when the file ends. */
  const check = (name: string, body: () => Promise<void>): void => {
    void test(name, { timeout: TEST_TIMEOUT_MS }, async () => {
      try {
        await body();
      } catch (error) {
        failed = true;
        throw error;
      }
    });
  };

  check("put, get, getAll with prefix, limit, sort, revision, count; delete", async () => {
    const first = await client.put("p/k1").value("v1");
    const firstRevision = BigInt(first.header.revision);
    await client.put("p/k2").value("v2");
    await client.put("p/k3").value("v3");
    assert.equal(await client.get("p/k1").string(), "v1");
    assert.equal(await client.get("p/none").string(), null);
    assert.deepEqual(await client.getAll().prefix("p/").strings(), {
      "p/k1": "v1",
      "p/k2": "v2",
      "p/k3": "v3",
    });
    assert.deepEqual(await client.getAll().prefix("p/").limit(2).keys(), ["p/k1", "p/k2"]);
    const limited = await client.getAll().prefix("p/").limit(2).exec();
    assert.equal(limited.more, true);
    assert.equal(limited.count, "3");
    assert.deepEqual(await client.getAll().prefix("p/").sort("Key", "Descend").keys(), [
      "p/k3",
      "p/k2",
      "p/k1",
    ]);
    assert.equal(await client.getAll().prefix("p/").count(), 3);

    const rewrite = await client.put("p/k1").value("v1b");
    assert.ok(BigInt(rewrite.header.revision) > firstRevision, "revisions increase");
    assert.equal(await client.get("p/k1").revision(String(firstRevision)).string(), "v1");
    const current = await client.get("p/k1").exec();
    assert.equal(current.kvs[0]?.version, "2");
    assert.equal(current.kvs[0]?.create_revision, String(firstRevision));
    assert.equal(current.kvs[0]?.mod_revision, rewrite.header.revision);
    const previous = await client.put("p/k1").value("v1c").getPrevious();
    assert.equal(previous.value.toString(), "v1b");

    const deleted = await client.delete().key("p/k1").exec();
    assert.equal(deleted.deleted, "1");
    const gone = await client.delete().prefix("p/").getPrevious();
    assert.deepEqual(gone.map((kv) => `${kv.key.toString()}=${kv.value.toString()}`).sort(), [
      "p/k2=v2",
      "p/k3=v3",
    ]);
    assert.equal(await client.getAll().prefix("p/").count(), 0);
  });

  check("txn: compares on value, version, mod revision; both branches", async () => {
    const put = await client.put("t/a").value("1");
    const success = await client
      .if("t/a", "Value", "==", "1")
      .and("t/a", "Mod", "==", put.header.revision)
      .then(client.put("t/b").value("yes"))
      .else(client.put("t/b").value("no"))
      .commit();
    assert.equal(success.succeeded, true);
    assert.equal(await client.get("t/b").string(), "yes");
    const failure = await client
      .if("t/a", "Version", ">", 1)
      .then(client.put("t/c").value("then"))
      .else(client.put("t/c").value("else"), client.delete().key("t/b"))
      .commit();
    assert.equal(failure.succeeded, false);
    assert.deepEqual(await client.getAll().prefix("t/").strings(), { "t/a": "1", "t/c": "else" });
  });

  check("watch with a start revision and previous values, then live events", async () => {
    const start = BigInt((await client.put("w/start").value("0")).header.revision);
    await client.put("w/a").value("1");
    await client.put("w/a").value("2");
    await client.delete().key("w/a");
    const watcher = await client
      .watch()
      .prefix("w/a")
      .withPreviousKV()
      .startRevision(String(start + 1n))
      .create();
    try {
      const events = collect(watcher);
      await waitForEvents(events, 3, "the replayed events");
      await client.put("w/a").value("live");
      await waitForEvents(events, 4, "the live event");
      assert.deepEqual(events, [
        { type: "put", key: "w/a", value: "1", previous: undefined },
        { type: "put", key: "w/a", value: "2", previous: "1" },
        { type: "delete", key: "w/a", value: "", previous: "2" },
        { type: "put", key: "w/a", value: "live", previous: undefined },
      ]);
    } finally {
      await watcher.cancel();
    }
  });

  check("leases: grant, attach, time to live, keep-alive, revoke, expiry", async () => {
    const lease = client.lease(60);
    const id = await lease.grant();
    await lease.put("l/k").value("v");
    const ttl = await client.leaseClient.leaseTimeToLive({ ID: id, keys: true });
    assert.equal(ttl.grantedTTL, "60");
    assert.ok(Number(ttl.TTL) > 0 && Number(ttl.TTL) <= 60, `remaining ${ttl.TTL}`);
    assert.deepEqual(
      ttl.keys.map((k) => k.toString()),
      ["l/k"],
    );
    const listed = await client.leaseClient.leaseLeases();
    assert.ok(
      listed.leases.some((l) => l.ID === id),
      "leaseLeases lists it",
    );
    const refreshed = await lease.keepaliveOnce();
    assert.equal(refreshed.TTL, "60");
    await lease.revoke();
    assert.equal(await client.get("l/k").string(), null);
    await assert.rejects(client.leaseClient.leaseRevoke({ ID: id }), EtcdLeaseInvalidError);

    // TTL 3 with the client's own keep-alive (every second): five refreshes outlast the TTL.
    const kept = client.lease(3);
    let refreshes = 0;
    kept.on("keepaliveSucceeded", () => (refreshes += 1));
    await kept.put("l/kept").value("alive");
    await until("five keep-alives", LONG_WAIT_MS, () => refreshes >= 5);
    assert.equal(await client.get("l/kept").string(), "alive");
    await kept.revoke();

    const unrefreshed = client.lease(2, { autoKeepAlive: false });
    await unrefreshed.put("l/expiring").value("soon");
    await eventually("the unrefreshed lease's key to expire", LONG_WAIT_MS, async () =>
      (await client.get("l/expiring").string()) === null ? true : undefined,
    );
  });

  check("compaction: reading an older revision is OUT_OF_RANGE with etcd's message", async () => {
    const r1 = BigInt((await client.put("c/k").value("v1")).header.revision);
    const r2 = BigInt((await client.put("c/k").value("v2")).header.revision);
    await client.kv.compact({ revision: String(r2), physical: true });
    await assert.rejects(
      client.get("c/k").revision(String(r1)).string(),
      (error: Error) =>
        error instanceof GRPCOutOfRangeError &&
        error.message.includes("etcdserver: mvcc: required revision has been compacted"),
    );
    assert.equal(await client.get("c/k").revision(String(r2)).string(), "v2");
    await assert.rejects(
      client
        .get("c/k")
        .revision(String(r2 + 10n ** 15n))
        .string(),
      (error: Error) => error.message.includes("etcdserver: mvcc: required revision is a future revision"),
    );
  });

  check("cluster and maintenance: member list and status name the same members and leader", async () => {
    const members = await client.cluster.memberList({});
    assert.deepEqual(
      members.members.map((m) => [m.name, m.ID, m.clientURLs]).sort(),
      FOUNDERS.map((name) => {
        return [name, String(cluster.idOf(name)), [clientUrl(cluster.member(name))]];
      }).sort(),
    );
    const leaderId = String(cluster.idOf(await cluster.waitForLeader()));
    for (const name of FOUNDERS) {
      const single = newClient([cluster.endpoint(name)]);
      const status = await single.maintenance.status();
      assert.equal(status.leader, leaderId, `${name}'s status names the leader`);
      assert.equal(status.header.member_id, String(cluster.idOf(name)));
      single.close();
    }
  });

  check("cluster: memberAdd lists an unstarted member, memberRemove takes it out", async () => {
    // One member answers every call: its member list follows its own adds and removes, as
    // etcd's does, where another member's may lag a moment behind.
    const onN1 = newClient([cluster.endpoint("n1")]);
    const founderIds = FOUNDERS.map((n) => String(cluster.idOf(n))).sort();
    const peerURL = `http://127.0.0.1:${await freePort()}`;
    try {
      const added = await onN1.cluster.memberAdd({ peerURLs: [peerURL] });
      assert.equal(added.member.name, "", "an unstarted member has no name yet");
      assert.deepEqual(added.member.peerURLs, [peerURL]);
      assert.deepEqual(added.members.map((m) => m.ID).sort(), [...founderIds, added.member.ID].sort());
      await onN1.cluster.memberRemove({ ID: added.member.ID });
      const listed = await onN1.cluster.memberList({});
      assert.deepEqual(listed.members.map((m) => m.ID).sort(), founderIds);
      await assert.rejects(
        onN1.cluster.memberRemove({ ID: added.member.ID }),
        /etcdserver: member not found/,
      );
    } finally {
      // Whatever failed above, no unstarted voter stays behind: with four voters, the SIGKILL
      // test below would leave two of them and no quorum.
      await eventually("only the founders to be members", LONG_WAIT_MS, async () => {
        try {
          const { members } = await onN1.cluster.memberList({});
          const strangers = members.filter((m) => !founderIds.includes(m.ID));
          for (const stranger of strangers) await onN1.cluster.memberRemove({ ID: stranger.ID });
          return strangers.length === 0 ? true : undefined;
        } catch {
          return undefined;
        }
      });
    }
  });

  check("maintenance: a snapshot streams to its end and carries etcd's trailing SHA-256", async () => {
    const single = newClient([cluster.endpoint("n1")]);
    const stream = await single.maintenance.snapshot();
    const chunks: Buffer[] = [];
    let lastRemaining = "";
    await within(
      new Promise<void>((resolve, reject) => {
        stream.on("data", (response) => {
          chunks.push(response.blob);
          lastRemaining = response.remaining_bytes;
        });
        stream.on("end", resolve);
        stream.on("error", reject);
      }),
      SHORT_WAIT_MS,
      "the snapshot stream to end",
    );
    const image = Buffer.concat(chunks);
    assert.equal(lastRemaining, "0", "the last chunk says nothing remains");
    assert.equal(image.length % 512, 32, "etcdctl accepts only sizes of 512-byte pages plus a 32-byte hash");
    const body = image.subarray(0, image.length - 32);
    assert.deepEqual(image.subarray(image.length - 32), createHash("sha256").update(body).digest());
  });

  check("maintenance: moveLeader on the leader hands leadership to the target", async () => {
    const leader = await cluster.waitForLeader();
    const target = FOUNDERS.find((n) => n !== leader) ?? "";
    const onLeader = newClient([cluster.endpoint(leader)]);
    await onLeader.maintenance.moveLeader({ targetID: String(cluster.idOf(target)) });
    await eventually(`${target} to lead`, LONG_WAIT_MS, async () =>
      (await cluster.waitForLeader()) === target ? true : undefined,
    );
    const status = await newClient([cluster.endpoint(target)]).maintenance.status();
    assert.equal(status.leader, String(cluster.idOf(target)));
  });

  check("lock: several contenders, never two holders at once", async () => {
    const held = await client.lock("mutex/one").ttl(10).acquire();
    await assert.rejects(client.lock("mutex/one").acquire(), EtcdLockFailedError);
    await held.release();

    let holders = 0;
    let mostHolders = 0;
    let acquisitions = 0;
    const contend = async (contender: Etcd3, seed: number): Promise<void> => {
      let mine = 0;
      for (let attempt = 0; mine < LOCKS_PER_CONTENDER; attempt++) {
        assert.ok(attempt < LOCK_ATTEMPTS_PER_CONTENDER, `contender ${seed} got the lock only ${mine} times`);
        const lock = contender.lock("mutex/shared").ttl(10);
        try {
          await lock.acquire();
        } catch (error) {
          if (!(error instanceof EtcdLockFailedError)) throw error;
          await sleep(20 + ((attempt * 37 + seed * 11) % 80));
          continue;
        }
        holders += 1;
        mostHolders = Math.max(mostHolders, holders);
        await sleep(30);
        holders -= 1;
        mine += 1;
        acquisitions += 1;
        await lock.release();
      }
    };
    const contenders = Array.from({ length: LOCK_CONTENDERS }, () => newClient());
    await within(Promise.all(contenders.map((c, i) => contend(c, i))), 180_000, "every contender's locks");
    assert.equal(acquisitions, LOCK_CONTENDERS * LOCKS_PER_CONTENDER);
    assert.equal(mostHolders, 1, "never two holders at once");
  });

  // The observer starts once the first leader is elected: etcd3's ElectionObserver, started
  // on an empty election, takes the last put of its first watch response as the leader, which
  // is wrong when several candidacies land in one response (against etcd too).
  check(
    "election: several campaigners, one leader at a time, resign hands over, observe follows",
    async () => {
      const errors: string[] = [];
      const leaders: string[] = [];
      let current: string | undefined;
      let overlap = false;
      const campaigns: Campaign[] = Array.from({ length: CAMPAIGNERS }, (_, index) => {
        const value = `c${index}`;
        const campaign = newClient().election("el", 10).campaign(value);
        campaign.on("elected", () => {
          if (current !== undefined) overlap = true;
          current = value;
          leaders.push(value);
        });
        campaign.on("error", (error) => errors.push(`campaign ${value} failed: ${String(error)}`));
        return campaign;
      });
      const waitForLeader = async (round: number): Promise<string> => {
        await until(
          `leader number ${round}`,
          SHORT_WAIT_MS,
          () => leaders.length >= round || errors.length > 0,
        );
        assert.deepEqual(errors, [], "no campaign failed");
        assert.equal(leaders.length, round, "one leader at a time");
        const leader = leaders[round - 1] ?? "";
        assert.equal(await client.election("el").leader(), leader);
        return leader;
      };
      try {
        const first = await waitForLeader(1);
        const observer = await client.election("el").observe();
        const observed: (string | undefined)[] = [observer.leader()];
        observer.on("change", (value) => observed.push(value));
        observer.on("error", (error) => errors.push(`the observer failed: ${String(error)}`));
        try {
          assert.equal(observed[0], first, "the observer starts with the leader");
          for (let round = 1; round <= CAMPAIGNERS; round++) {
            const leader = round === 1 ? first : await waitForLeader(round);
            await until(
              `the observer to see ${leader}`,
              SHORT_WAIT_MS,
              () => observed.at(-1) === leader,
            ).catch((error: Error) => {
              throw new Error(
                `${error.message}; it saw ${JSON.stringify(observed)}; errors: ${errors.join("; ")}`,
              );
            });
            current = undefined;
            await campaigns[Number(leader.slice(1))]?.resign();
          }
          await until("the observer to see no leader", SHORT_WAIT_MS, () => observed.at(-1) === undefined);
        } finally {
          await observer.cancel();
        }
        assert.equal(overlap, false, "no one was elected while another led");
        assert.deepEqual([...leaders].sort(), ["c0", "c1", "c2"]);
        assert.deepEqual(observed, [...leaders, undefined], "the observer saw each leader in turn");
      } finally {
        for (const campaign of campaigns) await campaign.resign().catch(() => undefined);
      }
    },
  );

  check("after the leader is SIGKILLed: writes, reads, a watch, a lock and an election go on", async () => {
    const leader = await cluster.waitForLeader();
    const start = BigInt((await client.put("k/before").value("1")).header.revision);
    const watcher = await client.watch().prefix("k/").startRevision(String(start)).create();
    try {
      const events = collect(watcher);
      await waitForEvents(events, 1, "the first event");
      await cluster.killMember(leader);
      await eventually("a put after the kill", LONG_WAIT_MS, async () => {
        try {
          await client.put("k/after").value("2");
          return true;
        } catch {
          return undefined;
        }
      });
      // From here on, clients of the survivors only: which dead host a fresh etcd3 client
      // tries first (and gives up on after its three attempts) is the library's business.
      const survivors = newClient(cluster.endpoints);
      assert.deepEqual(await survivors.getAll().prefix("k/").strings(), { "k/after": "2", "k/before": "1" });
      assert.notEqual(await cluster.waitForLeader(), leader);
      await waitForEvents(events, 2, "the watch event after the kill");
      assert.deepEqual(
        events.map((e) => `${e.key}=${e.value}`),
        ["k/before=1", "k/after=2"],
      );

      const lock = await survivors.lock("k-lock").ttl(10).acquire();
      await assert.rejects(newClient(cluster.endpoints).lock("k-lock").acquire(), EtcdLockFailedError);
      await lock.release();
      const campaign = survivors.election("k-election", 10).campaign("survivor");
      await within(campaign.wait(), SHORT_WAIT_MS, "the campaign after the kill");
      assert.equal(await survivors.election("k-election").leader(), "survivor");
      await campaign.resign();

      await cluster.restart(leader);
      const restarted = newClient([cluster.endpoint(leader)]);
      await eventually(`${leader} to catch up (serializable read)`, LONG_WAIT_MS, async () =>
        (await restarted.get("k/after").serializable(true).string()) === "2" ? true : undefined,
      );
      await restarted.put("k/restarted").value("3");
      await waitForEvents(events, 3, "the watch event after the restart");
      assert.equal(events[2]?.key, "k/restarted");
    } finally {
      await watcher.cancel();
    }
  });
});
