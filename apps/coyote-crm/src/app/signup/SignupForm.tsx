"use client";
import { useActionState } from "react";
import { Field, FormMessage, SelectField, type SelectOption } from "../../components/Field.tsx";
import { EMPTY_FORM } from "../../lib/forms.ts";
import { signup } from "./actions.ts";

/** The signup form: account, domain and plan in one step. */
export function SignupForm({ csrf, plans, selectedPlan, domainHint }: { csrf: string; plans: readonly SelectOption[]; selectedPlan: string | undefined; domainHint: string }) {
  const [state, action, pending] = useActionState(signup, EMPTY_FORM);
  return (
    <form action={action} className="card form" noValidate>
      <input type="hidden" name="csrf" value={csrf} />
      <FormMessage state={state} />
      <Field name="email" label="E-mail" type="email" autoComplete="email" required state={state} />
      <Field name="password" label="Password" type="password" autoComplete="new-password" required minLength={10} maxLength={200} hint="At least 10 characters. It is also the password of your mailbox and XMPP account." state={state} />
      <Field name="confirm" label="Repeat password" type="password" autoComplete="new-password" required state={state} />
      <Field name="domain" label="Domain" type="text" autoCapitalize="none" autoCorrect="off" spellCheck={false} required hint={domainHint} state={state} />
      <SelectField name="plan" label="Plan" options={plans} selected={selectedPlan} required state={state} />
      <button type="submit" disabled={pending}>
        {pending ? "Setting up…" : "Sign up"}
      </button>
    </form>
  );
}
