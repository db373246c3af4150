"use client";
import { Field } from "../../../components/Field.tsx";
import { ActionForm } from "../../../components/ActionForm.tsx";
import { changePasswordAction } from "./actions.ts";

/** The password change form: the current password, and the new one twice. */
export function PasswordForm({ csrf }: { csrf: string }) {
  return (
    <ActionForm action={changePasswordAction} csrf={csrf} label="Change password">
      {(state, pending) => (
        <>
          <Field name="current" label="Current password" type="password" autoComplete="current-password" required state={state} />
          <Field name="password" label="New password" type="password" autoComplete="new-password" required state={state} hint="At least 10 characters, not a common one." />
          <Field name="confirm" label="Repeat new password" type="password" autoComplete="new-password" required state={state} />
          <button type="submit" disabled={pending}>
            {pending ? "Changing…" : "Change password"}
          </button>
        </>
      )}
    </ActionForm>
  );
}
