"use client";
import { useActionState } from "react";
import { Field, FormMessage } from "../../../components/Field.tsx";
import { EMPTY_FORM } from "../../../lib/forms.ts";
import { addBuddyAction } from "./actions.ts";

/** The form that adds a buddy server. */
export function BuddyForm({ csrf }: { csrf: string }) {
  const [state, action, pending] = useActionState(addBuddyAction, EMPTY_FORM);
  return (
    <form action={action} className="card form" noValidate>
      <input type="hidden" name="csrf" value={csrf} />
      <FormMessage state={state} />
      <Field name="name" label="Name" required maxLength={100} state={state} hint="How this panel calls the other box, e.g. north." />
      <Field name="address" label="Address" type="url" required placeholder="https://north.example.org" state={state} hint="Where its coyote-listener answers, over HTTPS." />
      <Field name="fingerprint" label="Fingerprint" required placeholder="sha256:…" spellCheck={false} state={state} hint="The other box's key fingerprint (coyote identity on that box prints it)." />
      <div>
        <button type="submit" disabled={pending}>
          {pending ? "Adding…" : "Add buddy"}
        </button>
      </div>
    </form>
  );
}
