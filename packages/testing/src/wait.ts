// Waiting for a condition in a test: one poll loop with a deadline for every package, so that a
// wait never hangs a test run and its failure names what was awaited.
import { setTimeout as sleep } from "node:timers/promises";

/** How {@link waitFor} polls. */
export interface WaitOptions {
  /** How long to wait before failing, in milliseconds (default 10 000). */
  readonly timeoutMs?: number;
  /** The pause between two checks, in milliseconds (default 50). */
  readonly intervalMs?: number;
  /**
   * Whether a check that throws counts as "not yet" (default false: the error ends the wait). The
   * last error is named in the timeout's message.
   */
  readonly retryErrors?: boolean;
}

/**
 * Calls `check` until it returns a value other than `undefined` or `false`, and returns that value.
 * The deadline is read on the monotonic clock, so a wall-clock jump neither ends nor prolongs it.
 * @param what what is awaited, for the error message.
 * @param options the options, or the timeout in milliseconds alone.
 * @throws Error `timed out after N ms waiting for <what>` once the time is up.
 */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, options: WaitOptions | number = {}): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 50, retryErrors = false } = typeof options === "number" ? { timeoutMs: options } : options;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (!retryErrors) throw error;
      lastError = error;
    }
    if (performance.now() > deadline) {
      const why = lastError === undefined ? "" : `: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`, { cause: lastError });
    }
    await sleep(intervalMs);
  }
}
