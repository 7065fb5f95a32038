// Real etcd (Debian's etcd-server 3.4) members on 127.0.0.1, started with the same flags
// `concord start` takes: the reference the etcd-client tests can be pointed at
// (CONCORD_ETCD_CLIENT_TARGET=etcd) to show that what they expect is what etcd itself does.
// Never used by the suite's default run. Every wait is bounded.
import { spawn, type ChildProcess } from "node:child_process";
import { freePort } from "../free-port.js";
import { within } from "../process/process-cluster.js";
import { big, etcdctl, field, parseEtcdJson } from "./etcdctl.js";
import type { MemberProcesses, ProcessMember } from "./harness.js";

const READY_WAIT_MS = 60_000;
const EXIT_WAIT_MS = 30_000;

interface EtcdMember extends ProcessMember {
  readonly dataDir: string;
  readonly joiner: boolean;
  child: ChildProcess | null;
  exited: Promise<void> | null;
  id: bigint | null;
}

export class EtcdProcesses implements MemberProcesses {
  private readonly list: EtcdMember[] = [];

  private constructor(
    private readonly root: string,
    private readonly token: string,
  ) {}

  static async create(root: string, names: readonly string[], token: string): Promise<EtcdProcesses> {
    const processes = new EtcdProcesses(root, token);
    for (const name of names) await processes.add(name, false);
    return processes;
  }

  get members(): readonly ProcessMember[] {
    return this.list;
  }

  memberId(name: string): bigint | null {
    return this.find(name).id;
  }

  async addJoiner(name: string): Promise<ProcessMember> {
    return this.add(name, true);
  }

  forget(name: string): void {
    const member = this.find(name);
    if (member.running) throw new Error(`${name} is still running`);
    this.list.splice(this.list.indexOf(member), 1);
  }

  async start(name: string): Promise<void> {
    const member = this.find(name);
    const named = member.joiner ? this.list : this.list.filter((m) => !m.joiner);
    const url = (port: number) => `http://127.0.0.1:${port}`;
    const child = spawn(
      "etcd",
      [
        `--name=${name}`,
        `--data-dir=${member.dataDir}`,
        `--listen-client-urls=${url(member.clientPort)}`,
        `--advertise-client-urls=${url(member.clientPort)}`,
        `--listen-peer-urls=${url(member.peerPort)}`,
        `--initial-advertise-peer-urls=${url(member.peerPort)}`,
        `--initial-cluster=${named.map((m) => `${m.name}=${url(m.peerPort)}`).join(",")}`,
        `--initial-cluster-state=${member.joiner ? "existing" : "new"}`,
        `--initial-cluster-token=${this.token}`,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    member.child = child;
    member.running = true;
    member.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    member.log += `--- start of ${name} ---\n`;
    const ready = new Promise<void>((resolve, reject) => {
      child.stderr?.on("data", (chunk: Buffer) => {
        member.log += chunk.toString();
        if (member.log.includes("ready to serve client requests")) resolve();
      });
      void member.exited?.then(() => reject(new Error(`${name} exited before it was ready:\n${member.log}`)));
    });
    await within(ready, READY_WAIT_MS, `etcd ${name} to serve clients`);
    const endpoint = `127.0.0.1:${member.clientPort}`;
    const status = await etcdctl(["endpoint", "status", "-w", "json"], { endpoints: [endpoint] });
    member.id = big(field(parseEtcdJson(status.stdout), 0, "Status", "header", "member_id"));
  }

  async kill(name: string): Promise<void> {
    const member = this.find(name);
    member.child?.kill("SIGKILL");
    if (member.exited !== null) await within(member.exited, EXIT_WAIT_MS, `etcd ${name} to die`);
    member.running = false;
    member.child = null;
  }

  killAll(): void {
    for (const member of this.list) {
      member.child?.kill("SIGKILL");
      member.running = false;
    }
  }

  private async add(name: string, joiner: boolean): Promise<EtcdMember> {
    if (this.list.some((m) => m.name === name)) throw new Error(`a member named ${name} exists`);
    const member: EtcdMember = {
      name,
      clientPort: await freePort(),
      peerPort: await freePort(),
      dataDir: `${this.root}/${name}`,
      joiner,
      running: false,
      log: "",
      child: null,
      exited: null,
      id: null,
    };
    this.list.push(member);
    return member;
  }

  private find(name: string): EtcdMember {
    const member = this.list.find((m) => m.name === name);
    if (member === undefined) throw new Error(`no member named ${name}`);
    return member;
  }
}
