// A customer changing their password: the panel's sign-in, and the mailbox and XMPP account each of
// their services made at signup, all move to the new password at once. The mail and XMPP
// credentials are rewritten in the service specs (the minion carries them to Dovecot and Prosody);
// when one spec cannot be written, the specs already written get their old credential back, so the
// three never disagree.
import { eq } from "drizzle-orm";
import { z } from "zod";
import type { CrmDb } from "../db.ts";
import { audit } from "../audit.ts";
import { hashPassword } from "../passwords.ts";
import { passwordProblem } from "../password-policy.ts";
import { inMinutes, LIMITS, reserveAttempt } from "../ratelimit.ts";
import { customerServices, sessions, users } from "../schema.ts";
import { checkSignIn, type SignInOptions } from "../signin.ts";
import { authorOf } from "../state.ts";
import { credentialFor, currentHashes, messageOf, oneEditAtATime, readServiceSpec, schemeOf, withHashes, type EditStore } from "./spec-edit.ts";
import type { ServiceSpec } from "@coyote/spec";

/** The form: the current password, the new one twice. */
export const PasswordChangeForm = z
  .object({
    current: z.string({ error: "enter your current password" }).min(1, { error: "enter your current password" }).max(1024, { error: "that is not your current password" }),
    password: z.string({ error: "enter a new password" }),
    confirm: z.string({ error: "repeat the new password" }),
  })
  .strict();

/** What a password change needs. */
export interface PasswordChangeDeps {
  readonly db: CrmDb;
  readonly store: EditStore;
  /** The signed-in customer. */
  readonly user: { readonly id: string; readonly email: string };
  /** The client's address (the current password's check is throttled like a sign-in). */
  readonly clientAddress: string;
  /** The sign-in check's options, for tests. */
  readonly signIn?: SignInOptions;
  readonly now?: () => number;
}

/** What a password change did: the services whose accounts follow, or what to show on the form (nothing changed). */
export type PasswordChangeResult =
  | { readonly ok: true; readonly services: readonly string[] }
  | { readonly ok: false; readonly message?: string; readonly errors?: Readonly<Record<string, string>> };

/** One service's accounts that follow the customer's password, and what they held before. */
interface Follower {
  readonly serviceId: string;
  readonly spec: ServiceSpec;
  /** The accounts' keys (`mail:<address>`, `xmpp:<jid>`) with their hashes before the change. */
  readonly before: Map<string, string>;
  /** The same keys with their new hashes. */
  readonly after: Map<string, string>;
}

/** The accounts of a service that carry the customer's own password: the mailbox and the XMPP account its signup made. */
function followingKeys(spec: ServiceSpec, row: { mailAddress: string | null; xmppAddress: string | null }): string[] {
  const keys: string[] = [];
  if (row.mailAddress !== null && spec.mail?.mailboxes.some((box) => box.address === row.mailAddress) === true) keys.push(`mail:${row.mailAddress}`);
  if (row.xmppAddress !== null && spec.xmpp?.users.some((u) => `${u.username}@${u.domain}` === row.xmppAddress) === true) keys.push(`xmpp:${row.xmppAddress}`);
  return keys;
}

/**
 * Changes a signed-in customer's password. The current password is checked as a sign-in is
 * (throttled per account and network, through the same counters), and changes are limited per
 * account; then every service's own mailbox and XMPP account get a credential of the new password
 * in the service's SCRAM scheme, the panel's hash is replaced, and every other session of the
 * account ends. The audit log records who, from where and which services, never a password.
 * @param deps the database, state store, signed-in user and client address.
 * @param input the submitted form's fields (current, password, confirm).
 */
export async function changePassword(deps: PasswordChangeDeps, input: Readonly<Record<string, unknown>>): Promise<PasswordChangeResult> {
  const { db, user } = deps;
  const now = (deps.now ?? Date.now)();
  const parsed = PasswordChangeForm.safeParse(pickFields(input));
  if (!parsed.success) return { ok: false, errors: { [String(parsed.error.issues[0]?.path[0] ?? "form")]: parsed.error.issues[0]?.message ?? "check the form" } };
  const { current, password, confirm } = parsed.data;
  const problem = passwordProblem(password, user.email);
  if (problem !== undefined) return { ok: false, errors: { password: problem } };
  if (confirm !== password) return { ok: false, errors: { confirm: "the two new passwords differ; type the same password twice" } };
  if (password === current) return { ok: false, errors: { password: "the new password is the one you have now; choose another" } };

  const check = await checkSignIn(db, user.email, current, deps.clientAddress, { ...deps.signIn, now });
  if (check.kind === "busy") return { ok: false, message: "the panel is busy checking other passwords; try again in a moment" };
  if (check.kind === "wait") return { ok: false, message: `too many wrong passwords from your network; try again ${inMinutes(check.ms)}` };
  if (check.kind === "wrong" || check.user.id !== user.id) return { ok: false, errors: { current: "that is not your current password" } };
  const wait = reserveAttempt(db, [[`password-change:${user.id}`, LIMITS.passwordChangePerAccount]], now);
  if (wait > 0) return { ok: false, message: `you changed your password many times in a short while; try again ${inMinutes(wait)}` };

  const panelHash = await hashPassword(password);
  return oneEditAtATime(() => apply(deps, password, panelHash));
}

function pickFields(input: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return { current: input.current, password: input.password, confirm: input.confirm };
}

async function apply(deps: PasswordChangeDeps, password: string, panelHash: string): Promise<PasswordChangeResult> {
  const { db, store, user } = deps;
  const rows = db.select().from(customerServices).where(eq(customerServices.userId, user.id)).all();
  const followers: Follower[] = [];
  for (const row of rows) {
    const spec = await readServiceSpec(store, row.serviceId);
    if (spec === undefined) continue;
    const keys = followingKeys(spec, row);
    if (keys.length === 0) continue;
    const hashes = await currentHashes(store, spec);
    let scheme;
    try {
      scheme = schemeOf(hashes);
    } catch (error) {
      return { ok: false, message: `changing the password of ${row.domain} failed: ${messageOf(error)}` };
    }
    const fresh = credentialFor(scheme, password);
    const before = new Map(keys.flatMap((key) => hashes.has(key) ? [[key, hashes.get(key) ?? ""] as const] : []));
    followers.push({ serviceId: row.serviceId, spec, before, after: new Map(keys.map((k) => [k, fresh])) });
  }

  const author = authorOf(user.email);
  const written: Follower[] = [];
  for (const follower of followers) {
    try {
      await store.applySpec(withHashes(follower.spec, follower.after), { author, message: `account: ${user.email} changed their password (mail and xmpp of ${follower.serviceId})` });
      written.push(follower);
    } catch (error) {
      await restore(deps, written);
      return { ok: false, message: `changing the password failed while updating ${follower.serviceId}: ${messageOf(error)}; nothing was changed` };
    }
  }
  try {
    db.transaction((tx) => {
      tx.update(users).set({ passwordHash: panelHash }).where(eq(users.id, user.id)).run();
      // Whoever else is signed in with the old password is signed out; the action opens a new session.
      tx.delete(sessions).where(eq(sessions.userId, user.id)).run();
    });
  } catch (error) {
    await restore(deps, written);
    return { ok: false, message: `changing the password failed while storing it for the panel: ${messageOf(error)}; nothing was changed` };
  }
  const services = followers.map((f) => f.serviceId);
  audit(db, user.email, "account.password", user.id, { ip: deps.clientAddress, services });
  return { ok: true, services };
}

/** Puts the old credentials back into the specs already written (from their hashes, since the store dropped the old secrets). */
async function restore(deps: PasswordChangeDeps, written: readonly Follower[]): Promise<void> {
  for (const follower of written) {
    const spec = await readServiceSpec(deps.store, follower.serviceId);
    if (spec === undefined) continue;
    await deps.store
      .applySpec(withHashes(spec, follower.before), { author: authorOf(deps.user.email), message: `account: ${deps.user.email}'s password change undone for ${follower.serviceId}` })
      .catch(() => undefined);
  }
}
