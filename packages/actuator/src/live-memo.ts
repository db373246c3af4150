/**
 * What a running daemon answered, kept for a short time and for the same process only: the
 * services of one batch share one question (`knotc zone-status`, Prosody's `host:list()`), and a
 * daemon that died or was restarted meanwhile is never reported from the memory.
 */
export class LiveMemo<T> {
  readonly #ttlMs: number;
  #last: { at: number; pid: number; value: Promise<T> } | undefined;

  /** @param ttlMs how long an answer is kept (1 s by default). */
  constructor(ttlMs = 1000) {
    this.#ttlMs = ttlMs;
  }

  /** Forgets the answer: after a commit the next question is asked again. */
  forget(): void {
    this.#last = undefined;
  }

  /**
   * The answer of the daemon running as `pid`: the kept one when it is the same pid's and young
   * enough, else `ask()`'s, kept from now on.
   */
  get(pid: number, ask: () => Promise<T>): Promise<T> {
    const now = performance.now();
    if (this.#last !== undefined && this.#last.pid === pid && now - this.#last.at < this.#ttlMs) return this.#last.value;
    const value = ask();
    this.#last = { at: now, pid, value };
    return value;
  }
}
