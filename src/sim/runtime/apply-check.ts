/**
 * The per-command checks of the runtime simulation, run as each replica applies: state-machine
 * safety (the same command, result kind and revision at every index of a range on every
 * node) and revisions strictly increasing within each incarnation of each replica. Ranges are
 * checked apart (each is its own Raft log); range commands (fence, split, merge fence, merge) are traced.
 */
import type { Replica } from "../../node/replica.js";
import type { NodeId } from "../../raft/types.js";
import { SIM_RANGE_ID, type RuntimeNode } from "./runtime-node.js";

/** The fingerprint of one applied command: what every node must have applied at its index. */
interface AppliedAt {
  readonly nodeId: NodeId;
  readonly fingerprint: string;
}

export interface ApplyCheckContext {
  violation(invariant: string, detail: string): void;
  trace(text: () => string): void;
  /** Counts each applied command and each snapshot restored. */
  applied(): void;
  restored(): void;
}

const decoder = new TextDecoder();

export class ApplyCheck {
  /** Per range, per log index: the first node's applied command there. */
  private readonly appliedAt = new Map<number, Map<number, AppliedAt>>();
  /** Replicas already watched (a replica is watched once, however often it is offered). */
  private readonly watched = new WeakSet<Replica>();

  constructor(private readonly context: ApplyCheckContext) {}

  /** Checks every command `replica` (of `node`'s running incarnation) applies from now on. */
  watch(node: RuntimeNode, replica: Replica): void {
    if (this.watched.has(replica)) return;
    this.watched.add(replica);
    const { context } = this;
    const incarnation = node.incarnation;
    let appliedAt = this.appliedAt.get(replica.rangeId);
    if (appliedAt === undefined) {
      appliedAt = new Map();
      this.appliedAt.set(replica.rangeId, appliedAt);
    }
    const where = replica.rangeId === SIM_RANGE_ID ? "" : `range ${replica.rangeId} `;
    let lastWriteRevision = replica.revision;
    replica.addApplyListener({
      onCommand: ({ index, envelope, outcome }) => {
        context.applied();
        const fingerprint =
          `${envelope.clientId}#${envelope.sequence} ${envelope.command.kind} ` +
          `rev ${outcome.result.revision} dup ${outcome.duplicate} ${outcome.result.response.kind}`;
        const first = appliedAt.get(index);
        if (first === undefined) {
          appliedAt.set(index, { nodeId: node.id, fingerprint });
          const { command } = envelope;
          const { response } = outcome.result;
          const result = response.kind === "error" ? response.message : "applied";
          if (command.kind === "fence" || command.kind === "split") {
            context.trace(
              () =>
                `range ${replica.rangeId} index ${index}: ${command.kind} at ` +
                `${decoder.decode(command.splitKey)} for range ${command.rhsRangeId}: ${result}`,
            );
          } else if (command.kind === "merge-fence") {
            context.trace(() => `range ${replica.rangeId} index ${index}: merge fence: ${result}`);
          } else if (command.kind === "merge") {
            context.trace(
              () =>
                `range ${replica.rangeId} index ${index}: merge of range ${command.rhsRangeId}: ${result}`,
            );
          }
        } else if (first.fingerprint !== fingerprint) {
          context.violation(
            "state-machine safety",
            `${where}index ${index}: n${first.nodeId} applied [${first.fingerprint}], n${node.id} [${fingerprint}]`,
          );
        }
        if (outcome.events.length > 0 && !outcome.duplicate) {
          if (outcome.result.revision <= lastWriteRevision) {
            context.violation(
              "revision order",
              `n${node.id} (incarnation ${incarnation}) ${where}wrote revision ${outcome.result.revision} ` +
                `at index ${index} after ${lastWriteRevision}`,
            );
          }
          lastWriteRevision = outcome.result.revision;
        }
      },
      onRestore: ({ revision }) => {
        context.restored();
        lastWriteRevision = revision;
      },
    });
  }
}
