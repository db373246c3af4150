"use client";
import { useActionState } from "react";
import { Field, FormMessage } from "../../components/Field.tsx";
import { EMPTY_FORM } from "../../lib/forms.ts";
import { login } from "./actions.ts";

/** The sign-in form. */
export function LoginForm({ csrf, next }: { csrf: string; next: string | undefined }) {
  const [state, action, pending] = useActionState(login, EMPTY_FORM);
  return (
    <form action={action} className="card form" noValidate>
      <input type="hidden" name="csrf" value={csrf} />
      {next === undefined ? null : <input type="hidden" name="next" value={next} />}
      <FormMessage state={state} />
      <Field name="email" label="E-mail" type="email" autoComplete="username" required state={state} />
      <Field name="password" label="Password" type="password" autoComplete="current-password" required state={state} />
      <button type="submit" disabled={pending}>
        {pending ? "Signing in…" : "Sign in"}
      </button>
    </form>
  );
}
