// Checking a password at sign-in, throttled so that guessing costs the guesser and not the box:
//
// - Each attempt is reserved (counted as a failure) before scrypt runs, per (account, client
//   network) and per client network, with exponential back-off after a few free attempts. A burst
//   of parallel attempts therefore gets at most the free ones verified.
// - Nothing is limited per account alone by time: a stranger failing on purpose delays only their
//   own network, never the rightful user signing in from another one.
// - What bounds guessing one account from many networks is verification capacity: at most
//   ACCOUNT_SLOTS verifications of one account run at once (each takes a few tenths of a second),
//   and at most VERIFY_SLOTS in the whole process. An attempt that finds no free slot is answered
//   "busy" at once (HTTP 429) instead of queueing on the thread pool that file I/O shares, and is
//   not counted. The rightful user retrying is never delayed by accumulated state, only by
//   contention for those slots while an attack runs.
import { and, eq } from "drizzle-orm";
import type { CrmDb } from "./db.ts";
import { clientNetwork } from "./network.ts";
import { dummyHash, hashPassword, needsRehash, verifyPassword } from "./passwords.ts";
import { clearFailures, LIMITS, reserveAttempt, type Limit } from "./ratelimit.ts";
import { users } from "./schema.ts";

/** Password verifications that may run at once in this process (each holds a thread-pool thread and 128 MiB). */
export const VERIFY_SLOTS = 2;
/** Verifications of one account that may run at once. */
export const ACCOUNT_SLOTS = 1;

/** How many verifications may run at once, in all and per account. */
export interface SlotCaps {
  readonly total: number;
  readonly perAccount: number;
}

const CAPS: SlotCaps = { total: VERIFY_SLOTS, perAccount: ACCOUNT_SLOTS };

// Process-wide, shared with the app's bundled copy of this module and with the custom server.
const KEY = Symbol.for("coyote.crm.verify-slots");
interface Slots {
  total: number;
  readonly perAccount: Map<string, number>;
  caps: SlotCaps;
}
type Holder = { [KEY]?: Slots };

function slots(): Slots {
  const holder = globalThis as Holder;
  holder[KEY] ??= { total: 0, perAccount: new Map(), caps: CAPS };
  return holder[KEY];
}

/**
 * Sets how many verifications may run at once in this process (default {@link VERIFY_SLOTS} and
 * {@link ACCOUNT_SLOTS}). Tests widen them to see the back-off alone at work.
 * @throws when a cap is not a positive whole number.
 */
export function setVerificationCaps(caps: SlotCaps): void {
  if (![caps.total, caps.perAccount].every((n) => Number.isInteger(n) && n >= 1)) throw new Error(`verification slots must be whole numbers of at least 1 (got ${caps.total} in all, ${caps.perAccount} per account)`);
  slots().caps = caps;
}

/** Whether every verification slot is taken (the server answers 429 before the app then). */
export function verificationsBusy(): boolean {
  const s = slots();
  return s.total >= s.caps.total;
}

/**
 * Takes a verification slot for `account` (any string; "" for a verification of no account, as a
 * signup's hash), or undefined when none is free. @returns the function that gives it back.
 */
export function takeVerificationSlot(account: string, caps?: SlotCaps): (() => void) | undefined {
  const s = slots();
  const { total, perAccount } = caps ?? s.caps;
  const mine = s.perAccount.get(account) ?? 0;
  if (s.total >= total || (account !== "" && mine >= perAccount)) return undefined;
  s.total++;
  if (account !== "") s.perAccount.set(account, mine + 1);
  let given = false;
  return () => {
    if (given) return;
    given = true;
    s.total--;
    const left = (s.perAccount.get(account) ?? 1) - 1;
    if (left > 0) s.perAccount.set(account, left);
    else s.perAccount.delete(account);
  };
}

/** The outcome of {@link checkSignIn}. */
export type SignInCheck =
  | { readonly kind: "ok"; readonly user: { readonly id: string; readonly email: string; readonly role: "admin" | "customer" } }
  | { readonly kind: "wrong" }
  | { readonly kind: "wait"; readonly ms: number }
  | { readonly kind: "busy" };

/** Limits, slot caps, verifier and clock of {@link checkSignIn}, for tests. */
export interface SignInOptions {
  readonly caps?: SlotCaps;
  readonly verify?: (password: string, hash: string) => Promise<boolean>;
  readonly perAccountAddress?: Limit;
  readonly perAddress?: Limit;
  readonly now?: number;
}

/**
 * Checks an e-mail address and password, throttled as the top of this file describes. An unknown
 * e-mail is checked against a dummy hash, so it takes as long as a known one; a good password
 * whose hash was made with weaker parameters is hashed again and stored.
 * @param email the normalised (trimmed, lower-case) e-mail address.
 * @param address the client's address (an IPv6 address counts by its /64).
 */
export async function checkSignIn(db: CrmDb, email: string, password: string, address: string, options: SignInOptions = {}): Promise<SignInCheck> {
  const net = clientNetwork(address);
  const pairKey = `login:${email}|${net}`;
  const release = takeVerificationSlot(email, options.caps);
  if (release === undefined) return { kind: "busy" };
  try {
    const wait = reserveAttempt(
      db,
      [
        [pairKey, options.perAccountAddress ?? LIMITS.loginPerAccountAddress],
        [`login-net:${net}`, options.perAddress ?? LIMITS.loginPerAddress],
      ],
      options.now,
    );
    if (wait > 0) return { kind: "wait", ms: wait };
    const user = db.select().from(users).where(eq(users.email, email)).get();
    const good = await (options.verify ?? verifyPassword)(password, user?.passwordHash ?? dummyHash());
    if (user === undefined || !good) return { kind: "wrong" };
    clearFailures(db, pairKey);
    if (needsRehash(user.passwordHash)) {
      const fresh = await hashPassword(password);
      // Only if nobody changed the password meanwhile.
      db.update(users).set({ passwordHash: fresh }).where(and(eq(users.id, user.id), eq(users.passwordHash, user.passwordHash))).run();
    }
    return { kind: "ok", user: { id: user.id, email: user.email, role: user.role } };
  } finally {
    release();
  }
}
