"use server";
import { clientIp, csrfValid, requireCustomer, setSessionCookie } from "../../../lib/auth.ts";
import { CSRF_FAILED, type FormState } from "../../../lib/forms.ts";
import { crmDb } from "../../../lib/instance.ts";
import { createSession } from "../../../lib/sessions.ts";
import { changePassword } from "../../../lib/shop/password-change.ts";
import { stateStore } from "../../../lib/state.ts";

/**
 * Changes the signed-in customer's password (lib/shop/password-change.ts checks and writes), then
 * opens a fresh session for this browser: every session of the old password has ended.
 */
export async function changePasswordAction(_prev: FormState, form: FormData): Promise<FormState> {
  if (!(await csrfValid(form))) return CSRF_FAILED;
  const user = await requireCustomer();
  const db = crmDb();
  const result = await changePassword({ db, store: await stateStore(), user, clientAddress: await clientIp() }, Object.fromEntries(form));
  if (!result.ok) return { message: result.message, errors: result.errors };
  const session = createSession(db, user.id);
  await setSessionCookie(session.token, session.expiresAt);
  const follow = result.services.length === 0 ? "" : " Your mailbox and chat account use it too; mail and chat apps need it within a minute.";
  return { ok: true, message: `Your password is changed.${follow}` };
}
