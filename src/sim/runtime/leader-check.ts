/**
 * The per-event check of simulated node-runtime clusters, shared by the runtime run and the
 * election workload's cluster: a host that stopped on an error is a violation (and is crashed
 * so the run goes on) unless it stopped on its full disk, which a node must; and no two nodes
 * may lead the same Raft term (election safety).
 */
import type { NodeId } from "../../raft/types.js";
import { DiskFullError } from "../../storage/errors.js";
import type { RuntimeNode } from "./runtime-node.js";

export interface LeaderCheckReports {
  /** The violation kind for two leaders of one term (each run names its own checks). */
  readonly electionSafetyKind: string;
  violation(kind: string, detail: string): void;
  /** `node` is the first leader of `term` seen. */
  newLeader(node: RuntimeNode, term: number): void;
  /**
   * `node`'s host stopped because its disk filled up while it ran (the engine refuses writes
   * from then on, until a restart); it has been crashed.
   */
  stoppedOnFullDisk?(node: RuntimeNode): void;
}

export class LeaderCheck {
  private readonly leaderOfTerm = new Map<number, NodeId>();

  constructor(private readonly reports: LeaderCheckReports) {}

  afterEvent(nodes: readonly RuntimeNode[]): void {
    for (const node of nodes) {
      const failure = node.failure();
      if (failure !== null) {
        node.crash();
        if (failure instanceof DiskFullError && node.diskFilledWhileUp)
          this.reports.stoppedOnFullDisk?.(node);
        else this.reports.violation("host failure", `n${node.id}: ${failure.message}`);
        continue;
      }
      const view = node.replica()?.termLeaderRevision();
      if (view?.leader !== node.id) continue;
      const known = this.leaderOfTerm.get(view.term);
      if (known === undefined) {
        this.leaderOfTerm.set(view.term, node.id);
        this.reports.newLeader(node, view.term);
      } else if (known !== node.id) {
        this.reports.violation(
          this.reports.electionSafetyKind,
          `n${known} and n${node.id} both lead term ${view.term}`,
        );
      }
    }
  }
}
