// The cluster the etcd-client tests drive: three real `bin/concord` members on 127.0.0.1
// (ProcessCluster), their etcd client endpoints, member ids as etcdctl prints them, finding the
// leader the way an operator would (`etcdctl endpoint status -w json` on every endpoint), and
// SIGKILL / restart of members. CONCORD_ETCD_CLIENT_TARGET=etcd runs the same tests against
// real etcd members instead, to check the tests' expectations against etcd itself. One cluster
// per test file; every wait is bounded.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProcessCluster, sleep, within } from "../process/process-cluster.js";
import { EtcdProcesses } from "./etcd-processes.js";
import { big, etcdctl, field, parseEtcdJson } from "./etcdctl.js";

export const FOUNDERS = ["n1", "n2", "n3"] as const;
const LEADER_WAIT_MS = 90_000;
const POLL_MS = 250;

/** Which server the tests drive: Concord (the default) or, as a reference, real etcd. */
export const TARGET: "concord" | "etcd" =
  process.env["CONCORD_ETCD_CLIENT_TARGET"] === "etcd" ? "etcd" : "concord";

export interface ProcessMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  running: boolean;
  /** Everything the member wrote to stderr. */
  log: string;
}

/** Members as processes: what the tests need from ProcessCluster (or its etcd stand-in). */
export interface MemberProcesses {
  readonly members: readonly ProcessMember[];
  /** The member's id once it has started. */
  memberId(name: string): bigint | null;
  /** Picks ports for a member that joins later; `start` runs it with `--initial-cluster-state existing`. */
  addJoiner(name: string): Promise<ProcessMember>;
  forget(name: string): void;
  start(name: string): Promise<void>;
  /** SIGKILL, waiting for the process to be gone. */
  kill(name: string): Promise<void>;
  killAll(): void;
}

/** ProcessCluster seen through MemberProcesses. */
class ConcordProcesses implements MemberProcesses {
  constructor(private readonly cluster: ProcessCluster) {}

  get members(): readonly ProcessMember[] {
    return this.cluster.members.map((m) => ({
      name: m.name,
      clientPort: m.clientPort,
      peerPort: m.peerPort,
      running: m.running !== null,
      log: m.log,
    }));
  }

  memberId(name: string): bigint | null {
    const id = this.cluster.member(name).nodeId;
    return id === null ? null : BigInt(id);
  }

  addJoiner(name: string): Promise<ProcessMember> {
    return this.cluster.addJoiner(name).then(() => this.member(name));
  }

  forget(name: string): void {
    this.cluster.forget(name);
  }

  start(name: string): Promise<void> {
    return this.cluster.start(name);
  }

  kill(name: string): Promise<void> {
    return this.cluster.kill(name);
  }

  killAll(): void {
    this.cluster.killAll();
  }

  private member(name: string): ProcessMember {
    const found = this.members.find((m) => m.name === name);
    if (found === undefined) throw new Error(`no member named ${name}`);
    return found;
  }
}

export interface EndpointStatus {
  readonly endpoint: string;
  readonly memberId: bigint;
  readonly leader: bigint;
  readonly raftTerm: bigint;
}

export class ClientCluster {
  private constructor(
    private readonly processes: MemberProcesses,
    /** Concord's own view of its members, which finds a leader without etcdctl. */
    private readonly concord: ProcessCluster | null,
    private readonly root: string,
  ) {}

  /** Starts n1..n3 in a fresh temporary directory and waits for an agreed leader. */
  static async start(label: string): Promise<ClientCluster> {
    const root = mkdtempSync(join(tmpdir(), `concord-${label}-`));
    const token = `${label}-token`;
    let cluster: ClientCluster;
    if (TARGET === "etcd") {
      cluster = new ClientCluster(await EtcdProcesses.create(root, FOUNDERS, token), null, root);
    } else {
      const concord = await ProcessCluster.create(root, FOUNDERS, token);
      cluster = new ClientCluster(new ConcordProcesses(concord), concord, root);
    }
    try {
      await Promise.all(FOUNDERS.map((name) => cluster.processes.start(name)));
      await cluster.waitForLeader();
    } catch (error) {
      cluster.close();
      throw error;
    }
    return cluster;
  }

  member(name: string): ProcessMember {
    const found = this.processes.members.find((m) => m.name === name);
    if (found === undefined) throw new Error(`no member named ${name}`);
    return found;
  }

  get members(): readonly ProcessMember[] {
    return this.processes.members;
  }

  /** Every running member's client endpoint (host:port), in member order. */
  get endpoints(): string[] {
    return this.processes.members.filter((m) => m.running).map((m) => endpointOf(m));
  }

  /** Every member's client endpoint, running or not. */
  get allEndpoints(): string[] {
    return this.processes.members.map((m) => endpointOf(m));
  }

  endpoint(name: string): string {
    return endpointOf(this.member(name));
  }

  idOf(name: string): bigint {
    const id = this.processes.memberId(name);
    if (id === null) throw new Error(`${name} has not started yet, so its id is unknown`);
    return id;
  }

  /** The member id as etcdctl prints it (`%x`: lower-case hex, no padding). */
  hexId(name: string): string {
    return this.idOf(name).toString(16);
  }

  nameOfId(id: bigint): string {
    const member = this.processes.members.find((m) => this.processes.memberId(m.name) === id);
    if (member === undefined) throw new Error(`no member has id ${id.toString(16)}`);
    return member.name;
  }

  addJoiner(name: string): Promise<ProcessMember> {
    return this.processes.addJoiner(name);
  }

  /** Starts a member (a founder on its data dir, or a joiner). */
  startMember(name: string): Promise<void> {
    return this.processes.start(name);
  }

  killMember(name: string): Promise<void> {
    return this.processes.kill(name);
  }

  forget(name: string): void {
    this.processes.forget(name);
  }

  /**
   * The leader's name once the running members agree on one: Concord's own status where it
   * can (no etcdctl needed), etcdctl's endpoint status for etcd.
   */
  async waitForLeader(): Promise<string> {
    if (this.concord !== null) return (await this.concord.waitForLeader()).name;
    return this.leaderByEndpointStatus();
  }

  /** `etcdctl endpoint status -w json` on every running endpoint. */
  async endpointStatuses(): Promise<EndpointStatus[]> {
    const args = ["endpoint", "status", "-w", "json"];
    const result = await etcdctl(args, { endpoints: this.endpoints, timeoutMs: 20_000 });
    if (result.code !== 0) throw new Error(`endpoint status failed: ${result.stderr}`);
    const parsed = parseEtcdJson(result.stdout);
    if (!Array.isArray(parsed)) throw new Error(`endpoint status printed no array: ${result.stdout}`);
    return parsed.map((entry: unknown) => ({
      endpoint: String(field(entry, "Endpoint")),
      memberId: big(field(entry, "Status", "header", "member_id")),
      leader: big(field(entry, "Status", "leader")),
      raftTerm: big(field(entry, "Status", "raftTerm")),
    }));
  }

  /**
   * The leader's name once every running member's endpoint status names the same running
   * member as leader, polling until then (bounded).
   */
  async leaderByEndpointStatus(): Promise<string> {
    const poll = async (): Promise<string> => {
      for (;;) {
        const statuses = await this.endpointStatuses().catch(() => []);
        const leaders = new Set(statuses.map((s) => s.leader));
        const [leader] = leaders;
        const runningIds = this.processes.members
          .filter((m) => m.running)
          .map((m) => this.processes.memberId(m.name));
        if (
          statuses.length === runningIds.length &&
          leaders.size === 1 &&
          leader !== undefined &&
          runningIds.includes(leader)
        ) {
          return this.nameOfId(leader);
        }
        await sleep(POLL_MS);
      }
    };
    return within(poll(), LEADER_WAIT_MS, "every endpoint status to name one running leader");
  }

  /** SIGKILLs the current leader and returns its name. */
  async killLeader(): Promise<string> {
    const leader = await this.leaderByEndpointStatus();
    await this.processes.kill(leader);
    return leader;
  }

  /** Starts a stopped member on its data dir and waits until the cluster agrees on a leader. */
  async restart(name: string): Promise<void> {
    await this.processes.start(name);
    await this.waitForLeader();
  }

  /** A path in the cluster's temporary directory (removed with it) for a test's own file. */
  scratchPath(name: string): string {
    return join(this.root, name);
  }

  /** Every member's stderr, for a failure message. */
  logs(): string {
    return this.processes.members.map((m) => `=== ${m.name}\n${m.log}`).join("\n");
  }

  /** Kills whatever runs and removes the data dirs. */
  close(): void {
    this.processes.killAll();
    rmSync(this.root, { recursive: true, force: true });
  }
}

export function endpointOf(member: ProcessMember): string {
  return `127.0.0.1:${member.clientPort}`;
}

/** Retries `attempt` until it returns a value other than undefined, for at most `ms`. */
export async function eventually<T>(
  what: string,
  ms: number,
  attempt: () => Promise<T | undefined>,
): Promise<T> {
  const poll = async (): Promise<T> => {
    for (;;) {
      const value = await attempt();
      if (value !== undefined) return value;
      await sleep(POLL_MS);
    }
  };
  return within(poll(), ms, what);
}

/** Waits until `condition()` holds (checked every poll), for at most `ms`. */
export async function until(what: string, ms: number, condition: () => boolean): Promise<void> {
  await eventually(what, ms, () => Promise.resolve(condition() ? true : undefined));
}

export function peerUrl(member: ProcessMember): string {
  return `http://127.0.0.1:${member.peerPort}`;
}

export function clientUrl(member: ProcessMember): string {
  return `http://127.0.0.1:${member.clientPort}`;
}
