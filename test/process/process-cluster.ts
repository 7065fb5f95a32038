// A cluster of real `bin/concord` processes on 127.0.0.1 for crash tests: fixed free ports and
// data dirs per member, start (waiting for the ready line), SIGKILL, SIGTERM, restart on the
// same data dir, members that join later (`--initial-cluster-state existing`), and finding the
// leader by polling every running member's status. Every wait is bounded so a test fails
// instead of hanging; nothing here measures how long anything took.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Concord } from "../../src/api/concord.js";
import { freePort } from "../free-port.js";

/** The `concord` executable of this checkout. */
export const CONCORD_BIN = fileURLToPath(new URL("../../bin/concord", import.meta.url));
/** Generous: a start-up (through tsx when dist/ is stale) on a loaded two-core machine can take many seconds. */
const START_WAIT_MS = 90_000;
const EXIT_WAIT_MS = 60_000;
const LEADER_WAIT_MS = 90_000;
const LEADER_POLL_MS = 200;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with `promise`'s value, or rejects naming `what` after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up waiting for ${what} after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

interface MemberSpec {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /** False for the founding members; true for one added later that starts as `existing`. */
  readonly joiner: boolean;
}

/** One run of a member's process, from spawn to exit. */
interface Incarnation {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout: string;
}

export interface Member extends MemberSpec {
  /** The Raft node id, read from the ready line's member-id. */
  nodeId: number | null;
  running: Incarnation | null;
  /** Everything every incarnation wrote to stderr, with a marker per start. */
  log: string;
}

export interface LeaderInfo {
  readonly name: string;
  readonly term: number;
}

async function newMember(root: string, name: string, joiner: boolean): Promise<Member> {
  return {
    name,
    clientPort: await freePort(),
    peerPort: await freePort(),
    dataDir: `${root}/${name}`,
    joiner,
    nodeId: null,
    running: null,
    log: "",
  };
}

function peerUrlOf(member: MemberSpec): string {
  return `http://127.0.0.1:${member.peerPort}`;
}

function clientUrlOf(member: MemberSpec): string {
  return `http://127.0.0.1:${member.clientPort}`;
}

export class ProcessCluster {
  private constructor(
    private readonly root: string,
    private readonly memberList: Member[],
    private readonly token: string,
  ) {}

  /** Picks free ports for `names`; starts nothing. */
  static async create(root: string, names: readonly string[], token: string): Promise<ProcessCluster> {
    const members: Member[] = [];
    for (const name of names) members.push(await newMember(root, name, false));
    return new ProcessCluster(root, members, token);
  }

  get members(): readonly Member[] {
    return this.memberList;
  }

  get clientEndpoints(): string[] {
    return this.members.map((m) => `127.0.0.1:${m.clientPort}`);
  }

  /**
   * Picks ports for a member that joins the running cluster later (after the cluster was told
   * about it, e.g. by `etcdctl member add`); `start` runs it with `--initial-cluster-state
   * existing`. Starts nothing.
   */
  async addJoiner(name: string): Promise<Member> {
    if (this.memberList.some((m) => m.name === name)) throw new Error(`a member named ${name} exists`);
    const member = await newMember(this.root, name, true);
    this.memberList.push(member);
    return member;
  }

  /** Forgets a stopped member (after it was removed from the cluster). */
  forget(name: string): void {
    const member = this.member(name);
    if (member.running !== null) throw new Error(`${name} is still running`);
    this.memberList.splice(this.memberList.indexOf(member), 1);
  }

  member(name: string): Member {
    const found = this.members.find((m) => m.name === name);
    if (found === undefined) throw new Error(`no member named ${name}`);
    return found;
  }

  runningMembers(): Member[] {
    return this.members.filter((m) => m.running !== null);
  }

  /** Starts `name` on its data dir and waits for its ready line. */
  async start(name: string): Promise<void> {
    const member = this.member(name);
    if (member.running !== null) throw new Error(`${name} is already running`);
    // Founders keep naming the founding membership (their data dirs record it); a joiner names
    // everyone it will find, itself included, as etcd's `member add` tells it to.
    const named = member.joiner ? this.members : this.members.filter((m) => !m.joiner);
    const initialCluster = named.map((m) => `${m.name}=${peerUrlOf(m)}`).join(",");
    const child = spawn(
      CONCORD_BIN,
      [
        "start",
        "--name",
        member.name,
        "--data-dir",
        member.dataDir,
        "--listen-client-urls",
        clientUrlOf(member),
        "--advertise-client-urls",
        clientUrlOf(member),
        "--listen-peer-urls",
        peerUrlOf(member),
        "--initial-advertise-peer-urls",
        peerUrlOf(member),
        "--initial-cluster",
        initialCluster,
        "--initial-cluster-state",
        member.joiner ? "existing" : "new",
        "--initial-cluster-token",
        this.token,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const incarnation: Incarnation = {
      child,
      stdout: "",
      exited: new Promise((resolve, reject) => {
        child.once("error", reject);
        child.once("exit", (code, signal) => resolve({ code, signal }));
      }),
    };
    member.running = incarnation;
    member.log += `--- start of ${name} (pid ${child.pid ?? "?"}) ---\n`;
    child.stderr?.on("data", (chunk: Buffer) => (member.log += chunk.toString()));
    const ready = new Promise<string>((resolve, reject) => {
      child.stdout?.on("data", (chunk: Buffer) => {
        incarnation.stdout += chunk.toString();
        const line = incarnation.stdout.split("\n").find((l) => l.startsWith("concord ready: "));
        if (line !== undefined) resolve(line);
      });
      void incarnation.exited.then(({ code, signal }) =>
        reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${member.log}`)),
      );
    });
    const line = await within(ready, START_WAIT_MS, `${name}'s ready line`);
    const memberId = /member-id=([0-9a-f]+)/.exec(line)?.[1];
    if (memberId === undefined) throw new Error(`${name}'s ready line names no member id: ${line}`);
    const nodeId = Number.parseInt(memberId, 16);
    if (member.nodeId !== null && member.nodeId !== nodeId) {
      throw new Error(`${name} came back as node ${nodeId}, was ${member.nodeId}`);
    }
    member.nodeId = nodeId;
  }

  /** SIGKILLs `name` and waits for the process to be gone. */
  async kill(name: string): Promise<void> {
    const incarnation = this.runningIncarnation(name);
    incarnation.child.kill("SIGKILL");
    await within(incarnation.exited, EXIT_WAIT_MS, `${name} to die of SIGKILL`);
    this.member(name).running = null;
  }

  /** SIGTERMs `name` and returns its exit code (0: it closed cleanly). */
  async terminate(name: string): Promise<number | null> {
    const incarnation = this.runningIncarnation(name);
    incarnation.child.kill("SIGTERM");
    const { code } = await within(incarnation.exited, EXIT_WAIT_MS, `${name} to exit after SIGTERM`);
    this.member(name).running = null;
    return code;
  }

  /** SIGKILLs whatever still runs (for `finally`). */
  killAll(): void {
    for (const member of this.members) {
      const child = member.running?.child;
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      member.running = null;
    }
  }

  /**
   * Polls the running members until one says it leads (the highest term wins if a deposed
   * leader has not heard yet) and every other running member names it as leader.
   */
  async waitForLeader(): Promise<LeaderInfo> {
    const poll = async (): Promise<LeaderInfo> => {
      for (;;) {
        const found = await this.agreedLeader();
        if (found !== null) return found;
        await sleep(LEADER_POLL_MS);
      }
    };
    return within(poll(), LEADER_WAIT_MS, "a leader every running member agrees on");
  }

  private async agreedLeader(): Promise<LeaderInfo | null> {
    const statuses = await Promise.all(
      this.runningMembers().map(async (member) => {
        const db = Concord.connect({
          endpoints: [`127.0.0.1:${member.clientPort}`],
          retry: { maxAttempts: 1 },
          connectTimeoutMs: 2_000,
        });
        try {
          return { member, status: await within(db.status(), 5_000, `${member.name}'s status`) };
        } catch {
          return null;
        } finally {
          await db.close();
        }
      }),
    );
    if (statuses.some((s) => s === null)) return null;
    const answered = statuses.filter((s) => s !== null);
    const leaders = answered.filter((s) => s.status.role === "leader");
    const leader = leaders.sort((a, b) => b.status.term - a.status.term)[0];
    if (leader === undefined) return null;
    const agreed = answered.every(
      (s) => s.status.leader === leader.status.nodeId && s.status.term === leader.status.term,
    );
    return agreed ? { name: leader.member.name, term: leader.status.term } : null;
  }

  private runningIncarnation(name: string): Incarnation {
    const incarnation = this.member(name).running;
    if (incarnation === null) throw new Error(`${name} is not running`);
    return incarnation;
  }
}
