import type { FormState } from "../../lib/forms.ts";
import { Field } from "../Field.tsx";

/**
 * A new password typed twice, and the form's submit button: the end of every account form that
 * sets a password (the account's own, a mailbox's).
 */
export function NewPasswordFields({ state, pending, names, labels, hint, submit }: {
  state: FormState;
  pending: boolean;
  /** The two fields' names (they are the inputs' ids too, so each form of a page names its own). */
  names: readonly [string, string];
  labels: readonly [string, string];
  hint?: string;
  /** The button's label, and its label while the form is being sent. */
  submit: readonly [string, string];
}) {
  return (
    <>
      <Field name={names[0]} label={labels[0]} type="password" autoComplete="new-password" required state={state} hint={hint} />
      <Field name={names[1]} label={labels[1]} type="password" autoComplete="new-password" required state={state} />
      <button type="submit" disabled={pending}>
        {pending ? submit[1] : submit[0]}
      </button>
    </>
  );
}
