"use server";
import { redirect } from "next/navigation";
import { z } from "zod";
import { audit } from "../../lib/audit.ts";
import { clientIp, csrfValid, setSessionCookie } from "../../lib/auth.ts";
import { CSRF_FAILED, fieldErrors, formValues, type FormState } from "../../lib/forms.ts";
import { safeNext } from "../../lib/gate.ts";
import { crmDb } from "../../lib/instance.ts";
import { inMinutes } from "../../lib/ratelimit.ts";
import { createSession } from "../../lib/sessions.ts";
import { checkSignIn } from "../../lib/signin.ts";

const Login = z.object({
  email: z.string().trim().toLowerCase().min(1, { error: "enter your e-mail address" }).max(254),
  password: z.string().min(1, { error: "enter your password" }).max(1024),
  next: z.string().max(2000).optional(),
});

/**
 * Signs a user in: throttled per account and client network with back-off (lib/signin.ts), the
 * same answer for a wrong e-mail or password.
 */
export async function login(_prev: FormState, form: FormData): Promise<FormState> {
  if (!(await csrfValid(form))) return CSRF_FAILED;
  const values = formValues(form);
  const parsed = Login.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { errors: fieldErrors(parsed.error), values };
  const { email, password } = parsed.data;
  const db = crmDb();
  const ip = await clientIp();
  const check = await checkSignIn(db, email, password, ip);
  if (check.kind === "busy") return { message: "the panel is busy checking other sign-ins; try again in a moment", values };
  if (check.kind === "wait") return { message: `too many failed sign-ins from your network; try again ${inMinutes(check.ms)}`, values };
  if (check.kind === "wrong") return { message: "wrong e-mail address or password", values };
  const { user } = check;
  const session = createSession(db, user.id);
  await setSessionCookie(session.token, session.expiresAt);
  if (user.role === "admin") audit(db, user.email, "sign-in", "panel", { ip });
  redirect(safeNext(parsed.data.next, user.role === "admin" ? "/admin" : "/account"));
}
