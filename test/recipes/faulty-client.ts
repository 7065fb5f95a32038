// A RecipeClient over a real store that injects the faults the recipes must survive: keep-alives
// that fail (a partitioned or paused holder cannot renew), and txns whose answer is lost after
// they applied, or before they were sent (both look alike to the caller: AmbiguousResultError).
import type { ConcordDb } from "../../src/api/index.js";
import type { TxnOp } from "../../src/kv/commands.js";
import { AmbiguousResultError } from "../../src/node/errors.js";
import type { RecipeClient } from "../../src/recipes/index.js";

type TxnSpec = Parameters<RecipeClient["txn"]>[0];

export class FaultyClient implements RecipeClient {
  /** While true, every keep-alive fails without reaching the store. */
  keepAliveFails = false;
  /** Txns for which this returns "after" apply and then lose their answer; "before": never sent. */
  loseAnswer: (spec: TxnSpec) => "after" | "before" | null = () => null;
  ambiguousAnswers = 0;

  constructor(private readonly db: ConcordDb) {}

  get: RecipeClient["get"] = (key, options) => this.db.get(key, options);
  range: RecipeClient["range"] = (key, options) => this.db.range(key, options);
  leaseGrant: RecipeClient["leaseGrant"] = (ttl) => this.db.leaseGrant(ttl);
  leaseRevoke: RecipeClient["leaseRevoke"] = (id) => this.db.leaseRevoke(id);
  watch: RecipeClient["watch"] = (key, options) => this.db.watch(key, options);

  async leaseKeepAlive(id: bigint): Promise<number | null> {
    if (this.keepAliveFails) throw new Error("keep-alive failed (injected)");
    return this.db.leaseKeepAlive(id);
  }

  async txn(spec: TxnSpec): ReturnType<RecipeClient["txn"]> {
    const fault = this.loseAnswer(spec);
    if (fault === "before") {
      this.ambiguousAnswers++;
      throw new AmbiguousResultError(1, "answer lost (injected, not applied)");
    }
    const result = await this.db.txn(spec);
    if (fault === "after") {
      this.ambiguousAnswers++;
      throw new AmbiguousResultError(1, "answer lost (injected, applied)");
    }
    return result;
  }
}

const decoder = new TextDecoder();

/** Whether a txn puts `key` in its success branch. */
export function puts(spec: TxnSpec, key: string): boolean {
  return (spec.success ?? []).some((op: TxnOp) => op.kind === "put" && decoder.decode(op.key) === key);
}
