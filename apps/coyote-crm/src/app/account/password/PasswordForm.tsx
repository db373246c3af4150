"use client";
import { Field } from "../../../components/Field.tsx";
import { ActionForm } from "../../../components/ActionForm.tsx";
import { NewPasswordFields } from "../../../components/shop/NewPassword.tsx";
import { changePasswordAction } from "./actions.ts";

/** The password change form: the current password, and the new one twice. */
export function PasswordForm({ csrf }: { csrf: string }) {
  return (
    <ActionForm action={changePasswordAction} csrf={csrf} label="Change password">
      {(state, pending) => (
        <>
          <Field name="current" label="Current password" type="password" autoComplete="current-password" required state={state} />
          <NewPasswordFields state={state} pending={pending} names={["password", "confirm"]} labels={["New password", "Repeat new password"]} hint="At least 10 characters, not a common one." submit={["Change password", "Changing…"]} />
        </>
      )}
    </ActionForm>
  );
}
