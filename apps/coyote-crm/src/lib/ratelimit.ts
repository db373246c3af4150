import { eq } from "drizzle-orm";
import type { CrmDb } from "./db.ts";
import { loginFailures } from "./schema.ts";

/** A limit: at most `max` failures per `windowMs`. */
export interface Limit {
  readonly max: number;
  readonly windowMs: number;
}

/** Sign-in failures per client address and per account, and activation-token guesses per address. */
export const LIMITS = {
  loginPerAddress: { max: 20, windowMs: 15 * 60_000 },
  loginPerAccount: { max: 5, windowMs: 15 * 60_000 },
  activationPerAddress: { max: 5, windowMs: 15 * 60_000 },
  signupPerAddress: { max: 10, windowMs: 60 * 60_000 },
} as const satisfies Record<string, Limit>;

/** Milliseconds until `key` may try again, or 0 when it may now. */
export function retryAfterMs(db: CrmDb, key: string, limit: Limit, now = Date.now()): number {
  const row = db.select().from(loginFailures).where(eq(loginFailures.key, key)).get();
  if (row === undefined || now - row.windowStart >= limit.windowMs) return 0;
  return row.count >= limit.max ? row.windowStart + limit.windowMs - now : 0;
}

/** Counts one failure (or one use, for limits on attempts) of `key`. */
export function countFailure(db: CrmDb, key: string, limit: Limit, now = Date.now()): void {
  const row = db.select().from(loginFailures).where(eq(loginFailures.key, key)).get();
  if (row === undefined || now - row.windowStart >= limit.windowMs) {
    db.insert(loginFailures).values({ key, count: 1, windowStart: now }).onConflictDoUpdate({ target: loginFailures.key, set: { count: 1, windowStart: now } }).run();
  } else {
    db.update(loginFailures).set({ count: row.count + 1 }).where(eq(loginFailures.key, key)).run();
  }
}

/** Forgets the failures of `key` (after a good sign-in). */
export function clearFailures(db: CrmDb, key: string): void {
  db.delete(loginFailures).where(eq(loginFailures.key, key)).run();
}

/** "in N minutes" for an error message. */
export function inMinutes(ms: number): string {
  const minutes = Math.max(1, Math.ceil(ms / 60_000));
  return `in ${minutes} minute${minutes === 1 ? "" : "s"}`;
}
