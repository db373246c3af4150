"use server";
import { redirect } from "next/navigation";
import { clientIp, csrfValid, setSessionCookie } from "../../lib/auth.ts";
import { crmEnv } from "../../lib/env.ts";
import { CSRF_FAILED, formValues, type FormState } from "../../lib/forms.ts";
import { crmDb } from "../../lib/instance.ts";
import { createSession } from "../../lib/sessions.ts";
import { signUp } from "../../lib/shop/signup.ts";
import { readServer, stateStore } from "../../lib/state.ts";

/**
 * Signs a customer up (lib/shop/signup.ts does the checking and the writing), then signs them in
 * and sends them to their new service's page, where they watch it come up.
 */
export async function signup(_prev: FormState, form: FormData): Promise<FormState> {
  if (!(await csrfValid(form))) return CSRF_FAILED;
  const values = formValues(form);
  const db = crmDb();
  const store = await stateStore();
  const result = await signUp({ db, store, server: await readServer(store), stateDir: crmEnv().stateDir, clientAddress: await clientIp() }, Object.fromEntries(form));
  if (!result.ok) return { message: result.message, errors: result.errors, values };
  const session = createSession(db, result.userId);
  await setSessionCookie(session.token, session.expiresAt);
  redirect(`/account/services/${encodeURIComponent(result.serviceId)}`);
}
