"use client";
import { useActionState, type ReactNode } from "react";
import { EMPTY_FORM, type FormState } from "../lib/forms.ts";
import { FormMessage } from "./Field.tsx";

/** A server action a form posts to: it gets the last answer and the form, and answers anew. */
export type FormAction = (previous: FormState, form: FormData) => Promise<FormState>;

/**
 * A form posted to a server action, with what every such form of the panel has: the CSRF field,
 * the message for the whole form, and browser validation off (the action checks and answers per
 * field). Its fields are drawn from the action's last answer and whether a submission is under way.
 */
export function ActionForm({ action, csrf, initial = EMPTY_FORM, label, children }: {
  action: FormAction;
  csrf: string;
  initial?: FormState;
  label?: string;
  children: (state: FormState, pending: boolean) => ReactNode;
}) {
  const [state, formAction, pending] = useActionState(action, initial);
  return (
    <form action={formAction} className="card form" noValidate aria-label={label}>
      <input type="hidden" name="csrf" value={csrf} />
      <FormMessage state={state} />
      {children(state, pending)}
    </form>
  );
}
