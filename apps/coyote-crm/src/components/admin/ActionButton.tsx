"use client";
import { useActionState } from "react";
import { FormMessage } from "../Field.tsx";
import { EMPTY_FORM, type FormState } from "../../lib/forms.ts";

/**
 * A one-button form (Acknowledge, Remove, Accept, Roll back): a server action with hidden fields,
 * the CSRF field included, and its answer shown next to the button.
 */
export function ActionButton({
  action,
  csrf,
  fields,
  label,
  pendingLabel,
  className,
}: {
  action: (state: FormState, form: FormData) => Promise<FormState>;
  csrf: string;
  fields: Readonly<Record<string, string>>;
  label: string;
  pendingLabel: string;
  className?: string;
}) {
  const [state, formAction, pending] = useActionState(action, EMPTY_FORM);
  return (
    <form action={formAction} className="inline">
      <input type="hidden" name="csrf" value={csrf} />
      {Object.entries(fields).map(([name, value]) => (
        <input key={name} type="hidden" name={name} value={value} />
      ))}
      <button type="submit" className={className} disabled={pending}>
        {pending ? pendingLabel : label}
      </button>
      <FormMessage state={state} />
    </form>
  );
}
