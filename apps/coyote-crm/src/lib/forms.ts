import type { z } from "zod";

/**
 * What a server action answers a form: errors per field (shown next to the field), a message for
 * the whole form, and the values to put back (never a password).
 */
export interface FormState {
  readonly ok?: boolean;
  readonly message?: string;
  readonly errors?: Readonly<Record<string, string>>;
  readonly values?: Readonly<Record<string, string>>;
}

/** The empty state a form starts with. */
export const EMPTY_FORM: FormState = {};

/** The first error of each field of a failed zod parse, by the field's top-level name. */
export function fieldErrors(error: z.ZodError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const issue of error.issues) {
    const key = issue.path.length === 0 ? "form" : String(issue.path[0]);
    out[key] ??= issue.message;
  }
  return out;
}

/** A form's fields as strings (files and repeated names aside), to validate and to echo back. */
export function formValues(form: FormData, omit: readonly string[] = ["csrf", "password", "confirm"]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of form.entries()) {
    if (key.startsWith("$ACTION") || omit.includes(key) || typeof value !== "string") continue;
    out[key] = value;
  }
  return out;
}

/** The answer to a form whose CSRF field does not match its cookie. */
export const CSRF_FAILED: FormState = { message: "this form expired or came from another site; reload the page and try again" };
