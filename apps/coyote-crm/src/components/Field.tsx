import type { InputHTMLAttributes, ReactNode, SelectHTMLAttributes, TextareaHTMLAttributes } from "react";
import type { FormState } from "../lib/forms.ts";

/** What every field has: a name (the form key), a label, an optional hint, the form's state. */
interface FieldBase {
  readonly name: string;
  readonly label: string;
  readonly hint?: string;
  readonly state: FormState;
}

/** The control's accessibility attributes, given its error. */
function described(id: string, error: string | undefined, hint: string | undefined) {
  return { id, "aria-invalid": error !== undefined, "aria-describedby": error !== undefined || hint !== undefined ? `${id}-note` : undefined };
}

/** Under a control: its error when the last submission found one, else its hint. */
function FieldNote({ id, hint, error }: { id: string; hint: string | undefined; error: string | undefined }) {
  if (error !== undefined) {
    return (
      <p className="error" id={`${id}-note`} role="alert">
        {error}
      </p>
    );
  }
  return hint === undefined ? null : (
    <p className="hint" id={`${id}-note`}>
      {hint}
    </p>
  );
}

/**
 * A labelled control with its hint under it, replaced by its error (tied to the control for screen
 * readers) when the last submission found one.
 */
function FieldFrame({ id, label, hint, error, children }: { id: string; label: string; hint: string | undefined; error: string | undefined; children: ReactNode }) {
  return (
    <div className={error === undefined ? "field" : "field invalid"}>
      <label htmlFor={id}>{label}</label>
      {children}
      <FieldNote id={id} hint={hint} error={error} />
    </div>
  );
}

/** A labelled input. A password is never put back after a failed submission; other values are. */
export function Field({ name, label, hint, state, defaultValue, ...input }: FieldBase & InputHTMLAttributes<HTMLInputElement>) {
  const error = state.errors?.[name];
  const id = `field-${name}`;
  return (
    <FieldFrame id={id} label={label} hint={hint} error={error}>
      <input name={name} defaultValue={input.type === "password" ? undefined : (state.values?.[name] ?? defaultValue)} {...described(id, error, hint)} {...input} />
    </FieldFrame>
  );
}

/** A labelled text area (one entry per line, for lists). */
export function TextAreaField({ name, label, hint, state, defaultValue, ...textarea }: FieldBase & TextareaHTMLAttributes<HTMLTextAreaElement>) {
  const error = state.errors?.[name];
  const id = `field-${name}`;
  return (
    <FieldFrame id={id} label={label} hint={hint} error={error}>
      <textarea name={name} rows={3} defaultValue={state.values?.[name] ?? defaultValue} {...described(id, error, hint)} {...textarea} />
    </FieldFrame>
  );
}

/**
 * A checkbox with its label beside it. After a failed submission it shows what was submitted (a
 * ticked box sends "on", an unticked one nothing); before, `defaultChecked`.
 */
export function CheckboxField({ name, label, hint, state, defaultChecked, ...input }: FieldBase & InputHTMLAttributes<HTMLInputElement>) {
  const error = state.errors?.[name];
  const id = `field-${name}`;
  const checked = state.values === undefined ? defaultChecked : state.values[name] === "on";
  return (
    <div className={error === undefined ? "field" : "field invalid"}>
      <label htmlFor={id} style={{ fontWeight: 400 }}>
        <input name={name} type="checkbox" defaultChecked={checked} {...described(id, error, hint)} {...input} /> {label}
      </label>
      <FieldNote id={id} hint={hint} error={error} />
    </div>
  );
}

/** One choice of a {@link SelectField}. */
export interface SelectOption {
  readonly value: string;
  readonly label: string;
}

/** A labelled select; the submitted value comes back through `state.values` after a failed submission. */
export function SelectField({ name, label, hint, state, options, selected, ...select }: FieldBase & { options: readonly SelectOption[]; selected?: string } & SelectHTMLAttributes<HTMLSelectElement>) {
  const error = state.errors?.[name];
  const id = `field-${name}`;
  const chosen = state.values?.[name] ?? selected;
  return (
    <FieldFrame id={id} label={label} hint={hint} error={error}>
      {/* React sets a select's default only when it mounts, and resets the form to it after each
          submission; the key remounts it with the value that was submitted. */}
      <select key={chosen} name={name} defaultValue={chosen} {...described(id, error, hint)} {...select}>
        {options.map((option) => (
          <option key={option.value} value={option.value}>
            {option.label}
          </option>
        ))}
      </select>
    </FieldFrame>
  );
}

/** The message of a whole form: an error, or a success note. */
export function FormMessage({ state }: { state: FormState }) {
  if (state.message === undefined) return null;
  return (
    <p className={state.ok === true ? "notice ok" : "notice error"} role={state.ok === true ? "status" : "alert"}>
      {state.message}
    </p>
  );
}
