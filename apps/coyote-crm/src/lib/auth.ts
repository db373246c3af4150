// Sign-in state for pages and server actions (Next.js side). The gate in server.ts has already
// refused what a visitor may not reach; these checks repeat it where the data is read or changed.
import { timingSafeEqual } from "node:crypto";
import { cookies, headers } from "next/headers";
import { forbidden, unauthorized } from "next/navigation";
import { crmEnv } from "./env.ts";
import { crmDb } from "./instance.ts";
import { csrfCookieName, findSession, sessionCookieName, type SessionUser } from "./sessions.ts";

/** The signed-in user, if any. */
export async function currentUser(): Promise<SessionUser | undefined> {
  const jar = await cookies();
  return findSession(crmDb(), jar.get(sessionCookieName(crmEnv().secureCookies))?.value);
}

/** The signed-in admin; otherwise the request ends with 401 (nobody signed in) or 403 (a customer). */
export async function requireAdmin(): Promise<SessionUser> {
  const user = await currentUser();
  if (user === undefined) unauthorized();
  if (user.role !== "admin") forbidden();
  return user;
}

/** The signed-in customer; otherwise 401, or 403 for an admin (who has no services of their own). */
export async function requireCustomer(): Promise<SessionUser> {
  const user = await currentUser();
  if (user === undefined) unauthorized();
  if (user.role !== "customer") forbidden();
  return user;
}

/** This visitor's CSRF token, for the hidden field of a form (the gate set the cookie). */
export async function csrfToken(): Promise<string> {
  const jar = await cookies();
  return jar.get(csrfCookieName(crmEnv().secureCookies))?.value ?? "";
}

/** Whether a submitted form echoes this visitor's CSRF cookie. */
export async function csrfValid(form: FormData): Promise<boolean> {
  const expected = await csrfToken();
  const given = form.get("csrf");
  if (expected === "" || typeof given !== "string") return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The client's address, as the gate determined it. */
export async function clientIp(): Promise<string> {
  return (await headers()).get("x-coyote-client-ip") ?? "unknown";
}

/** Sets the session cookie after a sign-in. */
export async function setSessionCookie(token: string, expiresAt: Date): Promise<void> {
  const secure = crmEnv().secureCookies;
  (await cookies()).set(sessionCookieName(secure), token, { httpOnly: true, sameSite: "lax", secure, path: "/", expires: expiresAt });
}

/** Removes the session cookie (sign-out). @returns the token it held. */
export async function clearSessionCookie(): Promise<string | undefined> {
  const jar = await cookies();
  const name = sessionCookieName(crmEnv().secureCookies);
  const token = jar.get(name)?.value;
  jar.delete(name);
  return token;
}
