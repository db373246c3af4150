import { createHash, randomBytes, randomUUID } from "node:crypto";
import { eq, lt } from "drizzle-orm";
import type { CrmDb } from "./db.ts";
import { sessions, users } from "./schema.ts";

/** How long a sign-in lasts. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

/** The session cookie. `__Host-` binds it to this host, over HTTPS (or localhost), path `/`. */
export function sessionCookieName(secure: boolean): string {
  return secure ? "__Host-coyote-session" : "coyote-session";
}

/** The double-submit CSRF cookie: every form echoes it in a hidden field, every mutation compares. */
export function csrfCookieName(secure: boolean): string {
  return secure ? "__Host-coyote-csrf" : "coyote-csrf";
}

/** A signed-in user as pages and the gate see them. */
export interface SessionUser {
  readonly id: string;
  readonly email: string;
  readonly role: "admin" | "customer";
}

function digest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** A new random token for a cookie: 32 bytes, URL-safe. */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/** Opens a session for a user. @returns the cookie's token (only its hash is stored) and when it ends. */
export function createSession(db: CrmDb, userId: string, now = Date.now()): { token: string; expiresAt: Date } {
  const token = newToken();
  const expiresAt = new Date(now + SESSION_TTL_MS);
  db.insert(sessions).values({ tokenHash: digest(token), userId, createdAt: new Date(now).toISOString(), expiresAt: expiresAt.toISOString() }).run();
  // Ended sessions go whenever a new one starts, so the table stays small without a timer.
  db.delete(sessions).where(lt(sessions.expiresAt, new Date(now).toISOString())).run();
  return { token, expiresAt };
}

/** The user of a live session, or undefined for a missing, unknown or ended one. */
export function findSession(db: CrmDb, token: string | undefined, now = Date.now()): SessionUser | undefined {
  if (token === undefined || !/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
  const row = db
    .select({ id: users.id, email: users.email, role: users.role, expiresAt: sessions.expiresAt })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.tokenHash, digest(token)))
    .get();
  if (row === undefined || Date.parse(row.expiresAt) <= now) return undefined;
  return { id: row.id, email: row.email, role: row.role };
}

/** Ends a session (signing out). */
export function deleteSession(db: CrmDb, token: string | undefined): void {
  if (token !== undefined) db.delete(sessions).where(eq(sessions.tokenHash, digest(token))).run();
}

/** A new user id. */
export function newUserId(): string {
  return randomUUID();
}
