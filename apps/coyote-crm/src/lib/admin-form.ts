// The checks every admin form action starts with, in one place: the admin's session (401/403
// otherwise), the CSRF field, and the form validated by its zod schema, with errors per field.
import type { z } from "zod";
import { csrfValid, requireAdmin } from "./auth.ts";
import { CSRF_FAILED, fieldErrors, formValues, type FormState } from "./forms.ts";
import type { SessionUser } from "./sessions.ts";

/** A form that passed the checks: who sent it, its parsed data, and its values to echo back. */
export interface CheckedForm<T> {
  readonly ok: true;
  readonly admin: SessionUser;
  readonly data: T;
  readonly values: Record<string, string>;
}

/**
 * Checks an admin's form submission.
 * @param omit fields never echoed back (secrets; passwords and the CSRF token by default).
 * @returns the checked form, or the state that answers the form (CSRF failure, field errors).
 */
export async function checkAdminForm<S extends z.ZodType>(form: FormData, schema: S, omit?: readonly string[]): Promise<CheckedForm<z.output<S>> | { readonly ok: false; readonly state: FormState }> {
  const admin = await requireAdmin();
  if (!(await csrfValid(form))) return { ok: false, state: CSRF_FAILED };
  const values = formValues(form, omit);
  const parsed = schema.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { ok: false, state: { errors: fieldErrors(parsed.error), values } };
  return { ok: true, admin, data: parsed.data, values };
}
