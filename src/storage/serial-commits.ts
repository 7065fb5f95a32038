/**
 * Group commit for the durable engines: one commit of the queued writes at a time, and every
 * sync called while one is in flight shares a single follow-up commit, which takes whatever is
 * queued by the time it starts. So commits never overlap (the disk sees them in order) and a
 * burst of syncs costs two commits, not one each.
 */
export class SerialCommits {
  #inFlight: Promise<void> | null = null;
  /** The commit that follows the in-flight one, shared by every sync() called meanwhile. */
  #queued: Promise<void> | null = null;

  /**
   * @param commitQueued commits everything queued now; called only when no commit is in flight
   * @param hasQueued whether anything is queued
   */
  constructor(
    private readonly commitQueued: () => Promise<void>,
    private readonly hasQueued: () => boolean,
  ) {}

  /** Resolves once every write queued before the call is committed. */
  sync(): Promise<void> {
    if (!this.hasQueued()) return this.#inFlight ?? Promise.resolve();
    if (this.#inFlight === null) return this.commitNow();
    this.#queued ??= this.#inFlight.then(() => {
      this.#queued = null;
      return this.commitNow();
    });
    return this.#queued;
  }

  /** Whether no commit is in flight (nor, then, queued). */
  idle(): boolean {
    return this.#inFlight === null;
  }

  /** Commits what is queued at once; no commit may be in flight (see settle). */
  commitNow(): Promise<void> {
    if (this.#inFlight !== null) throw new Error("storage: a commit started while another is in flight");
    const commit = this.commitQueued().finally(() => {
      this.#inFlight = null;
    });
    this.#inFlight = commit;
    return commit;
  }

  /** Waits until no commit is running or queued, whatever their outcome. */
  async settle(): Promise<void> {
    await (this.#queued ?? this.#inFlight)?.catch(() => undefined);
  }
}
