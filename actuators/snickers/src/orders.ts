/**
 * Certificate orders run in the background, a few at a time, each with a deadline: an order
 * talks to a CA that may stall, and it must never hold the minion's commit (and so every other
 * service's reconcile) while it waits.
 */

/** How orders are paced. */
export interface OrderRunnerOptions {
  /** How many orders run at once. */
  readonly concurrency: number;
  /** How long one order may take, queueing excluded, in milliseconds. */
  readonly timeoutMs: number;
}

/** One order's work: given the signal that aborts at its deadline or when the runner stops. */
export type OrderWork = (signal: AbortSignal) => Promise<void>;

/**
 * Runs at most `concurrency` orders at once, one per hostname: asking again for a hostname whose
 * order is queued or running changes nothing. The work records its own outcome (certificate or
 * backoff, on disk); the runner only bounds how many run and for how long.
 */
export class OrderRunner {
  readonly #options: OrderRunnerOptions;
  readonly #stop = new AbortController();
  /** Hostnames queued or running. */
  readonly #inFlight = new Set<string>();
  readonly #waiting: { host: string; work: OrderWork }[] = [];
  readonly #settled = new Set<Promise<void>>();
  #active = 0;

  /** Makes an idle runner. */
  constructor(options: OrderRunnerOptions) {
    this.#options = { concurrency: Math.max(1, Math.floor(options.concurrency)), timeoutMs: Math.max(1, options.timeoutMs) };
  }

  /** Whether an order for `host` is queued or running. */
  inFlight(host: string): boolean {
    return this.#inFlight.has(host);
  }

  /** How many orders are running now. */
  get active(): number {
    return this.#active;
  }

  /** Queues an order for `host` unless one is queued or running; returns at once. */
  start(host: string, work: OrderWork): void {
    if (this.#inFlight.has(host) || this.#stop.signal.aborted) return;
    this.#inFlight.add(host);
    this.#waiting.push({ host, work });
    this.#pump();
  }

  /** Aborts every running order, drops the queued ones, and waits for the running ones to end. */
  async stop(): Promise<void> {
    this.#stop.abort(new Error("the minion is stopping"));
    for (const { host } of this.#waiting.splice(0)) this.#inFlight.delete(host);
    await Promise.all([...this.#settled]);
  }

  /** Resolves once no order is queued or running (tests). */
  async idle(): Promise<void> {
    while (this.#settled.size > 0) await Promise.all([...this.#settled]);
  }

  #pump(): void {
    while (this.#active < this.#options.concurrency) {
      const next = this.#waiting.shift();
      if (!next) return;
      this.#active++;
      const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(this.#options.timeoutMs)]);
      // The work is expected to record its own failures; anything it lets escape is dropped
      // here so that one order's fault cannot end the daemon.
      const run: Promise<void> = next.work(signal).catch(() => undefined).finally(() => {
        this.#active--;
        this.#inFlight.delete(next.host);
        this.#settled.delete(run);
        this.#pump();
      });
      this.#settled.add(run);
    }
  }
}
