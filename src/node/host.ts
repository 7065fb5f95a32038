/**
 * NodeHost: one per process. It hosts any number of replicas (one per range), ticks them,
 * routes peer messages to them, and runs the Ready loop in turns.
 *
 * A turn gathers the Ready of every replica that has one, writes all their snapshots, entries
 * and hard states, makes them durable with ONE `engine.sync()` (group commit: many ranges,
 * one fsync), then sends every message (one `flush()`), applies committed entries, answers
 * proposals and reads, and advances each core. Inputs that arrive meanwhile (ticks, messages,
 * requests) are queued and fed to the cores at the start of the next turn, so a core is never
 * touched between its `ready()` and `advance()`. Turns run back to back while work remains,
 * never two at once; requests made together (in one synchronous stretch, or while a turn
 * waits for the disk) share the next turn.
 */
import type { Message, NodeId } from "../raft/types.js";
import { MessageType } from "../raft/types.js";
import type { TimerHandle } from "../transport/timers.js";
import type { Envelope } from "../transport/transport.js";
import {
  newNodeHostCounters,
  resolveNodeConfig,
  type NodeHostCounters,
  type NodeHostOptions,
  type ReplicaInit,
  type ResolvedNodeConfig,
} from "./options.js";
import { Replica, type ReplicaHost } from "./replica.js";

type HostState = "new" | "running" | "stopping" | "stopped" | "failed";

export class NodeHost {
  readonly nodeId: NodeId;
  readonly counters: NodeHostCounters = newNodeHostCounters();
  private readonly config: ResolvedNodeConfig;
  private readonly replicas = new Map<number, Replica>();
  private readonly replicaHost: ReplicaHost;
  private state: HostState = "new";
  private failureCause: Error | null = null;
  private pendingTicks = 0;
  private tickTimer: TimerHandle | null = null;
  private turnRequested = false;
  private loop: Promise<void> | null = null;
  private idleWaiters: (() => void)[] = [];
  private sequence = 0;

  /** Registers the host's handlers with the transport, which its owner starts and closes. */
  constructor(private readonly options: NodeHostOptions) {
    this.config = resolveNodeConfig(options);
    this.nodeId = options.nodeId;
    const incarnation = `node-${options.nodeId}.${options.wallClock()}.${options.random.nextInt(2 ** 31)}`;
    this.replicaHost = {
      nodeId: options.nodeId,
      config: this.config,
      logger: options.logger,
      counters: this.counters,
      monotonicClock: options.monotonicClock,
      wallClock: options.wallClock,
      random: options.random,
      incarnation,
      nextSequence: () => ++this.sequence,
      isAccepting: () => this.state === "new" || this.state === "running",
      requestTurn: () => this.requestTurn(),
    };
    options.transport.onReceive((envelope) => this.receive(envelope));
    options.transport.onUnreachable((peer) => this.peerUnreachable(peer));
  }

  /** Starts ticking and running turns. */
  start(): void {
    if (this.state !== "new") throw new Error(`cannot start a node host that is ${this.state}`);
    this.state = "running";
    this.scheduleTick();
    this.requestTurn();
  }

  /**
   * Hosts range `rangeId` on this node. Over Raft storage that already holds the range (a
   * restart) `init` is ignored; otherwise the replica bootstraps with the given membership or
   * waits to be added by the range's leader.
   */
  createReplica(rangeId: number, init: ReplicaInit): Replica {
    if (this.state !== "new" && this.state !== "running") {
      throw new Error(`cannot create a replica on a node host that is ${this.state}`);
    }
    if (this.replicas.has(rangeId)) throw new Error(`range ${rangeId} already has a replica on this node`);
    const replica = new Replica(
      rangeId,
      init,
      this.options.engine.replica(rangeId),
      this.options.stateMachine(rangeId),
      this.replicaHost,
    );
    this.replicas.set(rangeId, replica);
    this.requestTurn();
    return replica;
  }

  /** Reopens every range the storage engine holds that has no replica here yet (after a restart). */
  openStoredReplicas(): Replica[] {
    return this.options.engine
      .groups()
      .filter((rangeId) => !this.replicas.has(rangeId))
      .map((rangeId) => this.createReplica(rangeId, { join: true }));
  }

  replica(rangeId: number): Replica | undefined {
    return this.replicas.get(rangeId);
  }

  rangeIds(): number[] {
    return [...this.replicas.keys()].sort((a, b) => a - b);
  }

  /** The error that stopped the host, if one did (a storage failure, a broken invariant). */
  get failure(): Error | null {
    return this.failureCause;
  }

  /** True when no turn runs and none is due. */
  isIdle(): boolean {
    return this.loop === null && (this.state !== "running" || !this.hasWork());
  }

  /** Resolves once the host is idle. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops ticking, lets the current turn finish, and ends every replica (their pending
   * requests fail). Closes nothing it does not own: the engine, transport and state-machine
   * storage stay open for their owner.
   */
  async stop(): Promise<void> {
    if (this.state === "stopped" || this.state === "failed") return;
    this.state = "stopping";
    this.tickTimer?.cancel();
    this.tickTimer = null;
    await this.loop;
    if (this.state !== "stopping") return;
    for (const replica of this.replicas.values()) replica.close();
    this.state = "stopped";
    this.notifyIdle();
  }

  // ------------------------------------------------------------------ inputs

  private scheduleTick(): void {
    this.tickTimer = this.options.timers.setTimeout(() => {
      this.tickTimer = null;
      if (this.state !== "running") return;
      this.pendingTicks++;
      this.counters.ticks++;
      this.scheduleTick();
      this.requestTurn();
    }, this.config.tickMs);
  }

  private receive(envelope: Envelope): void {
    const count = envelope.messages.length;
    if (this.state !== "new" && this.state !== "running") {
      this.counters.dropped.notRunning += count;
      return;
    }
    const replica = this.replicas.get(envelope.groupId);
    if (replica === undefined) {
      this.counters.dropped.unknownRange += count;
      return;
    }
    const messages = envelope.messages.filter((m) => m.to === this.nodeId);
    this.counters.dropped.misaddressed += count - messages.length;
    this.counters.messagesReceived += messages.length;
    replica.receive(messages);
    this.requestTurn();
  }

  private peerUnreachable(peer: NodeId): void {
    for (const replica of this.replicas.values()) replica.peerUnreachable(peer);
    this.requestTurn();
  }

  // ------------------------------------------------------------------ turns

  private hasWork(): boolean {
    if (this.pendingTicks > 0) return true;
    for (const replica of this.replicas.values()) if (replica.hasWork()) return true;
    return false;
  }

  private requestTurn(): void {
    this.turnRequested = true;
    if (this.loop !== null || this.state !== "running") return;
    // A microtask later, so that requests made in the same synchronous stretch share the turn.
    this.loop = Promise.resolve().then(() => this.runTurns());
  }

  private async runTurns(): Promise<void> {
    try {
      while (this.turnRequested && this.state === "running") {
        this.turnRequested = false;
        await this.turn();
        if (this.hasWork()) this.turnRequested = true;
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.loop = null;
      this.notifyIdle();
    }
  }

  private async turn(): Promise<void> {
    const ticks = this.pendingTicks;
    this.pendingTicks = 0;
    const now = this.options.monotonicClock();
    const replicas = [...this.replicas.values()];
    for (const replica of replicas) await replica.installIncomingSnapshot();
    for (const replica of replicas) replica.feed(ticks, now);
    const work = replicas.flatMap((replica) => {
      const rd = replica.takeReady();
      return rd === null ? [] : [{ replica, rd }];
    });
    if (work.length === 0) return;
    this.counters.turns++;
    for (const { replica, rd } of work) replica.persist(rd);
    // Votes and append acknowledgements promise durability: sync before any message leaves.
    if (work.some(({ rd }) => rd.mustSync)) {
      await this.options.engine.sync();
      this.counters.syncs++;
    }
    for (const { replica, rd } of work) this.send(replica, rd.messages);
    this.options.transport.flush();
    for (const { replica, rd } of work) await replica.apply(rd);
    for (const { replica, rd } of work) replica.advance(rd);
    for (const replica of replicas) if (replica.snapshotDue) await replica.takeSnapshot();
  }

  private send(replica: Replica, messages: readonly Message[]): void {
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of messages) {
      if (m.type === MessageType.Snap) {
        this.sendSnapshot(replica, m);
        continue;
      }
      const batch = byPeer.get(m.to);
      if (batch === undefined) byPeer.set(m.to, [m]);
      else batch.push(m);
    }
    for (const [peer, batch] of byPeer) {
      this.options.transport.send(peer, {
        groupId: replica.rangeId,
        from: this.nodeId,
        to: peer,
        messages: batch,
      });
      this.counters.messagesSent += batch.length;
    }
  }

  /** Streams the state machine's current image with the core's snapshot metadata; reports the outcome. */
  private sendSnapshot(replica: Replica, m: Message): void {
    const image = replica.snapshotImage();
    this.counters.snapshotsSent++;
    const settle = (ok: boolean): void => {
      image.release();
      replica.snapshotSent(m.to, ok);
      this.requestTurn();
    };
    void this.options.transport.sendSnapshot(m.to, replica.rangeId, m, image).then(
      () => settle(true),
      (error: unknown) => {
        this.counters.snapshotsSendFailed++;
        this.options.logger.warn(
          { rangeId: replica.rangeId, to: m.to, error: String(error) },
          "snapshot transfer failed",
        );
        settle(false);
      },
    );
  }

  private fail(error: unknown): void {
    const cause = error instanceof Error ? error : new Error(String(error));
    this.failureCause = cause;
    this.state = "failed";
    this.tickTimer?.cancel();
    this.tickTimer = null;
    this.options.logger.warn({ nodeId: this.nodeId, error: cause.message }, "node host failed and stopped");
    for (const replica of this.replicas.values()) replica.close(cause);
    this.options.onFailure?.(cause);
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
