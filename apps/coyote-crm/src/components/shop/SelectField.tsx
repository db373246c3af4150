import type { SelectHTMLAttributes } from "react";
import type { FormState } from "../../lib/forms.ts";

/** One choice of a {@link SelectField}. */
export interface SelectOption {
  readonly value: string;
  readonly label: string;
}

/**
 * A labelled select with its error shown under it, like `Field` (components/Field.tsx) for inputs.
 * The submitted value comes back through `state.values` after a failed submission.
 */
export function SelectField({ name, label, options, selected, state, ...select }: { name: string; label: string; options: readonly SelectOption[]; selected?: string; state: FormState } & SelectHTMLAttributes<HTMLSelectElement>) {
  const error = state.errors?.[name];
  const id = `field-${name}`;
  const chosen = state.values?.[name] ?? selected;
  return (
    <div className={error === undefined ? "field" : "field invalid"}>
      <label htmlFor={id}>{label}</label>
      {/* React sets a select's default only when it mounts, and resets the form to it after each
          submission; the key remounts it with the value that was submitted. */}
      <select key={chosen} id={id} name={name} defaultValue={chosen} aria-invalid={error !== undefined} aria-describedby={error === undefined ? undefined : `${id}-error`} {...select}>
        {options.map((option) => (
          <option key={option.value} value={option.value}>
            {option.label}
          </option>
        ))}
      </select>
      {error !== undefined ? (
        <p className="error" id={`${id}-error`} role="alert">
          {error}
        </p>
      ) : null}
    </div>
  );
}
