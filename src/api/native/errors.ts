/** The native protocol's own failure: bytes from the other side that break its contract. */

/** The protocol contract was broken by the other side; the connection must close. */
export class NativeProtocolError extends Error {
  constructor(readonly reason: string) {
    super(`native protocol violation: ${reason}`);
    this.name = "NativeProtocolError";
  }
}
