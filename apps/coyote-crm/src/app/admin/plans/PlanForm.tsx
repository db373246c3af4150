"use client";
import { useActionState } from "react";
import { CheckboxField, Field, FormMessage, TextAreaField } from "../../../components/Field.tsx";
import type { FormState } from "../../../lib/forms.ts";
import { savePlanAction } from "./actions.ts";

/** The create/edit form of a plan; `initial` holds the values of the plan being edited. */
export function PlanForm({ csrf, initial }: { csrf: string; initial: FormState }) {
  const [state, action, pending] = useActionState(savePlanAction, initial);
  const editing = state.values?.editing ?? "";
  return (
    <form action={action} className="card form" noValidate>
      <input type="hidden" name="csrf" value={csrf} />
      <input type="hidden" name="editing" value={editing} />
      <FormMessage state={state} />
      <Field name="id" label="Id" required readOnly={editing !== ""} state={state} hint={editing === "" ? "1-32 of a-z, 0-9 and inner hyphens; it appears in the signup link and cannot change later." : "The id of a plan cannot change."} />
      <Field name="name" label="Name" required maxLength={60} state={state} />
      <TextAreaField name="description" label="Description" rows={3} maxLength={500} state={state} />
      <Field name="price" label="Price per month" inputMode="decimal" required state={state} hint="Like 4 or 4.50; 0 for free." />
      <fieldset className="field" style={{ border: 0, padding: 0, margin: 0 }}>
        <legend style={{ fontWeight: 600 }}>Parts</legend>
        <CheckboxField name="web" label="Web hosting" state={state} />
        <CheckboxField name="mail" label="Mail" state={state} />
        <CheckboxField name="xmpp" label="XMPP" state={state} />
      </fieldset>
      <Field name="maxMailboxes" label="Mailboxes per service" type="number" min={1} max={1000} state={state} hint="Including the one the signup makes; customers add the others themselves (1-1000)." />
      <Field name="maxAliases" label="Aliases per service" type="number" min={0} max={1000} state={state} hint="Addresses that forward to one of the service's mailboxes (0-1000)." />
      <CheckboxField name="active" label="Active (customers can sign up for it)" state={state} />
      <Field name="sortOrder" label="Sort order" type="number" min={0} max={1000} state={state} hint="Plans are shown by this number, then by name." />
      <div className="row">
        <button type="submit" disabled={pending}>
          {pending ? "Saving…" : editing === "" ? "Create plan" : "Save plan"}
        </button>
        {editing === "" ? null : <a href="/admin/plans">New plan instead</a>}
      </div>
    </form>
  );
}
