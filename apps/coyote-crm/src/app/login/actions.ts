"use server";
import { eq } from "drizzle-orm";
import { redirect } from "next/navigation";
import { z } from "zod";
import { audit } from "../../lib/audit.ts";
import { clientIp, csrfValid, setSessionCookie } from "../../lib/auth.ts";
import { CSRF_FAILED, fieldErrors, formValues, type FormState } from "../../lib/forms.ts";
import { safeNext } from "../../lib/gate.ts";
import { crmDb } from "../../lib/instance.ts";
import { DUMMY_HASH, verifyPassword } from "../../lib/passwords.ts";
import { clearFailures, countFailure, inMinutes, LIMITS, retryAfterMs } from "../../lib/ratelimit.ts";
import { users } from "../../lib/schema.ts";
import { createSession } from "../../lib/sessions.ts";

const Login = z.object({
  email: z.string().trim().toLowerCase().min(1, { error: "enter your e-mail address" }).max(254),
  password: z.string().min(1, { error: "enter your password" }).max(1024),
  next: z.string().max(2000).optional(),
});

/** Signs a user in: rate-limited per address and per account, the same answer for a wrong e-mail or password. */
export async function login(_prev: FormState, form: FormData): Promise<FormState> {
  if (!(await csrfValid(form))) return CSRF_FAILED;
  const values = formValues(form);
  const parsed = Login.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { errors: fieldErrors(parsed.error), values };
  const { email, password } = parsed.data;
  const db = crmDb();
  const ip = await clientIp();
  const ipKey = `login-ip:${ip}`;
  const accountKey = `login-account:${email}`;
  const wait = Math.max(retryAfterMs(db, ipKey, LIMITS.loginPerAddress), retryAfterMs(db, accountKey, LIMITS.loginPerAccount));
  if (wait > 0) return { message: `too many failed sign-ins; try again ${inMinutes(wait)}`, values };
  const user = db.select().from(users).where(eq(users.email, email)).get();
  const good = await verifyPassword(password, user?.passwordHash ?? DUMMY_HASH);
  if (user === undefined || !good) {
    countFailure(db, ipKey, LIMITS.loginPerAddress);
    countFailure(db, accountKey, LIMITS.loginPerAccount);
    return { message: "wrong e-mail address or password", values };
  }
  clearFailures(db, accountKey);
  const session = createSession(db, user.id);
  await setSessionCookie(session.token, session.expiresAt);
  if (user.role === "admin") audit(db, user.email, "sign-in", "panel", { ip });
  redirect(safeNext(parsed.data.next, user.role === "admin" ? "/admin" : "/account"));
}
