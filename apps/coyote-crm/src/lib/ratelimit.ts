// Attempt limits with exponential back-off, kept in the crm database so that they hold across the
// app's module instances and restarts. An attempt is counted when it is reserved, before the work
// it guards (a scrypt, a token check) runs: parallel attempts cannot all pass a check that is
// counted only afterwards.
import { eq, lt, sql } from "drizzle-orm";
import type { CrmDb } from "./db.ts";
import { attempts } from "./schema.ts";

/**
 * A limit: `max` attempts are free; each one after that makes the key wait
 * `baseDelayMs · 2^(n − max)`, at most `maxDelayMs`. A key left alone for `windowMs` after its
 * last wait is forgiven (its row expires and is purged).
 */
export interface Limit {
  readonly max: number;
  readonly windowMs: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

const MINUTE = 60_000;

/**
 * Sign-in attempts per (account, client network) and per client network, activation-token guesses
 * and signups per client network, and a signed-in customer's changes per account. No sign-in limit is per account alone: a stranger could then keep the
 * rightful user out by failing on purpose (see signin.ts for what bounds guessing one account).
 */
export const LIMITS = {
  loginPerAccountAddress: { max: 5, windowMs: 15 * MINUTE, baseDelayMs: 1000, maxDelayMs: 15 * MINUTE },
  loginPerAddress: { max: 20, windowMs: 15 * MINUTE, baseDelayMs: 1000, maxDelayMs: 15 * MINUTE },
  activationPerAddress: { max: 5, windowMs: 15 * MINUTE, baseDelayMs: 15 * MINUTE, maxDelayMs: 60 * MINUTE },
  // Ten an hour, then one an hour while the network keeps signing up.
  signupPerAddress: { max: 10, windowMs: 60 * MINUTE, baseDelayMs: 60 * MINUTE, maxDelayMs: 60 * MINUTE },
  // A signed-in customer's changes (each one a commit of the specs' history): a password change is
  // counted per account, since only the account's own session can make one.
  passwordChangePerAccount: { max: 5, windowMs: 60 * MINUTE, baseDelayMs: 10 * MINUTE, maxDelayMs: 60 * MINUTE },
  accountEditPerAccount: { max: 60, windowMs: 60 * MINUTE, baseDelayMs: MINUTE, maxDelayMs: 60 * MINUTE },
} as const satisfies Record<string, Limit>;

/**
 * At most this many rows: a flood from ever new addresses evicts the rows that expire first
 * instead of growing the database without bound (about 100 bytes a row).
 */
export const MAX_ROWS = 50_000;

/** Expired rows are purged on every this many writes (cheap: the expiry column is indexed). */
const PURGE_EVERY = 100;
let writes = 0;

type Row = typeof attempts.$inferSelect;

function live(db: CrmDb, key: string, now: number): Row | undefined {
  const row = db.select().from(attempts).where(eq(attempts.key, key)).get();
  return row === undefined || row.expiresAt <= now ? undefined : row;
}

function delayAfter(failures: number, limit: Limit): number {
  if (failures < limit.max) return 0;
  return Math.min(limit.maxDelayMs, limit.baseDelayMs * 2 ** Math.min(failures - limit.max, 40));
}

function count(db: CrmDb, key: string, limit: Limit, now: number): void {
  const failures = (live(db, key, now)?.failures ?? 0) + 1;
  const blockedUntil = now + delayAfter(failures, limit);
  const row = { key, failures, blockedUntil, expiresAt: blockedUntil + limit.windowMs };
  db.insert(attempts).values(row).onConflictDoUpdate({ target: attempts.key, set: row }).run();
  if (++writes % PURGE_EVERY === 0) purgeAttempts(db, now);
}

/** Milliseconds until `key` may try again, or 0 when it may now. */
export function retryAfterMs(db: CrmDb, key: string, _limit: Limit, now = Date.now()): number {
  const row = live(db, key, now);
  return row === undefined ? 0 : Math.max(0, row.blockedUntil - now);
}

/** Counts one attempt (a failure, or one use for limits on attempts) of `key`. */
export function countFailure(db: CrmDb, key: string, limit: Limit, now = Date.now()): void {
  count(db, key, limit, now);
}

/**
 * Reserves one attempt under every given limit at once, in one transaction: when any key must wait,
 * nothing is counted and the longest wait is returned; otherwise each key's attempt is counted now
 * (as a failure until {@link clearFailures} says otherwise) and 0 is returned.
 */
export function reserveAttempt(db: CrmDb, keys: ReadonlyArray<readonly [string, Limit]>, now = Date.now()): number {
  // better-sqlite3 is synchronous and has one connection: the statements below run inside the
  // transaction (BEGIN IMMEDIATE also keeps another process's crm out between check and count).
  return db.transaction(
    () => {
      const wait = Math.max(0, ...keys.map(([key, limit]) => retryAfterMs(db, key, limit, now)));
      if (wait > 0) return wait;
      for (const [key, limit] of keys) count(db, key, limit, now);
      return 0;
    },
    { behavior: "immediate" },
  );
}

/** Forgets the attempts of `key` (after a good sign-in). */
export function clearFailures(db: CrmDb, key: string): void {
  db.delete(attempts).where(eq(attempts.key, key)).run();
}

/** Removes expired rows, then the soonest-expiring ones beyond {@link MAX_ROWS}. @returns how many went. */
export function purgeAttempts(db: CrmDb, now = Date.now(), maxRows = MAX_ROWS): number {
  let removed = db.delete(attempts).where(lt(attempts.expiresAt, now)).run().changes;
  const rows = db.select({ n: sql<number>`count(*)` }).from(attempts).get()?.n ?? 0;
  if (rows > maxRows) {
    removed += db.$client
      .prepare("DELETE FROM attempts WHERE key IN (SELECT key FROM attempts ORDER BY expires_at LIMIT ?)")
      .run(rows - maxRows).changes;
  }
  return removed;
}

/** "in N minutes" (or seconds, for a short wait) for an error message. */
export function inMinutes(ms: number): string {
  if (ms < 60_000) {
    const seconds = Math.max(1, Math.ceil(ms / 1000));
    return `in ${seconds} second${seconds === 1 ? "" : "s"}`;
  }
  const minutes = Math.ceil(ms / 60_000);
  return `in ${minutes} minute${minutes === 1 ? "" : "s"}`;
}
