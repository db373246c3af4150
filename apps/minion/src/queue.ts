/**
 * A work queue of keys in the manner of client-go's workqueue: a key is in the queue at most once
 * however often it is added (de-duplication); adds within the debounce window are folded into one;
 * a key being processed that is added again is processed once more after the current run, never
 * twice at once; failed keys come back after an exponential backoff.
 */
import type { Outcome } from "@coyote/actuator";

/** How the queue paces work. */
export interface QueueOptions {
  /** How long an added key waits for more adds before it is handed out. */
  readonly debounceMs: number;
  /** The first retry delay after a failure. */
  readonly backoffInitialMs: number;
  /** The longest retry delay. */
  readonly backoffMaxMs: number;
}

/** The outcome of processing one key: what the reconcile of that service asked for. */
export type { Outcome };

/** A de-duplicating, debouncing work queue with per-key exponential backoff. */
export class WorkQueue {
  readonly #options: QueueOptions;
  /** Keys ready to be handed out, in order. */
  readonly #ready = new Set<string>();
  /** Keys waiting for their debounce or backoff timer. */
  readonly #timers = new Map<string, { timer: NodeJS.Timeout; dueAt: number }>();
  /** Keys being processed now. */
  readonly #processing = new Set<string>();
  /** Keys added again while being processed. */
  readonly #dirty = new Set<string>();
  /** Failures in a row per key, for the backoff. */
  readonly #failures = new Map<string, number>();
  #waiters: (() => void)[] = [];
  #closed = false;

  /** Makes an empty queue. */
  constructor(options: QueueOptions) {
    this.#options = options;
  }

  /** Adds a key after the debounce window; adding it again meanwhile changes nothing. */
  add(key: string): void {
    this.#schedule(key, this.#options.debounceMs, false);
  }

  /** Adds a key after `ms`, unless it is already due sooner. */
  addAfter(key: string, ms: number): void {
    this.#schedule(key, ms, false);
  }

  /** How many keys are waiting or ready (not counting those being processed). */
  get length(): number {
    return this.#ready.size + this.#timers.size;
  }

  /** Whether nothing is waiting, ready or being processed. */
  get idle(): boolean {
    return this.length === 0 && this.#processing.size === 0 && this.#dirty.size === 0;
  }

  /**
   * Waits for the next key to process. Resolves to undefined once the queue is closed. The caller
   * must call {@link WorkQueue.finish} with the key when done.
   */
  async next(): Promise<string | undefined> {
    for (;;) {
      if (this.#closed) return undefined;
      for (const key of this.#ready) {
        if (this.#processing.has(key)) continue;
        this.#ready.delete(key);
        this.#processing.add(key);
        return key;
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Takes every key that is ready now without waiting (for batching); each must be finished. */
  drainReady(max: number): string[] {
    const keys: string[] = [];
    for (const key of this.#ready) {
      if (keys.length >= max) break;
      if (this.#processing.has(key)) continue;
      this.#ready.delete(key);
      this.#processing.add(key);
      keys.push(key);
    }
    return keys;
  }

  /** Records the outcome of processing a key and schedules what follows from it. */
  finish(key: string, outcome: Outcome): void {
    this.#processing.delete(key);
    const readded = this.#dirty.delete(key);
    switch (outcome.kind) {
      case "done":
        this.#failures.delete(key);
        break;
      case "after":
        this.#failures.delete(key);
        this.#schedule(key, outcome.ms, false);
        break;
      case "retry": {
        const failures = (this.#failures.get(key) ?? 0) + 1;
        this.#failures.set(key, failures);
        this.#schedule(key, this.backoffFor(failures), true);
        break;
      }
      case "terminal":
        this.#failures.delete(key);
        break;
    }
    // A key that changed while it was processed is processed again, whatever the outcome.
    if (readded) this.#schedule(key, 0, true);
    this.#wake();
  }

  /** The delay before the `failures`-th retry: doubling from the initial delay, capped. */
  backoffFor(failures: number): number {
    return Math.min(this.#options.backoffInitialMs * 2 ** Math.max(0, failures - 1), this.#options.backoffMaxMs);
  }

  /** Stops handing out keys and cancels every timer. */
  close(): void {
    this.#closed = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#wake();
  }

  #schedule(key: string, ms: number, replaceLater: boolean): void {
    if (this.#closed) return;
    if (this.#processing.has(key) && !replaceLater) {
      this.#dirty.add(key);
      return;
    }
    if (this.#ready.has(key)) return;
    const existing = this.#timers.get(key);
    if (existing) {
      // Keep the earlier of the two due times: an add never delays work already scheduled sooner.
      if (existing.dueAt <= Date.now() + ms) return;
      clearTimeout(existing.timer);
    }
    if (ms <= 0) {
      this.#timers.delete(key);
      this.#ready.add(key);
      this.#wake();
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      if (this.#processing.has(key)) this.#dirty.add(key);
      else this.#ready.add(key);
      this.#wake();
    }, ms);
    this.#timers.set(key, { timer, dueAt: Date.now() + ms });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}
