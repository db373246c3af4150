import type { InputHTMLAttributes } from "react";
import type { FormState } from "../lib/forms.ts";

/** A labelled input with its error shown under it (and tied to it for screen readers). */
export function Field({ name, label, hint, state, defaultValue, ...input }: { name: string; label: string; hint?: string; state: FormState } & InputHTMLAttributes<HTMLInputElement>) {
  const error = state.errors?.[name];
  const id = `field-${name}`;
  return (
    <div className={error === undefined ? "field" : "field invalid"}>
      <label htmlFor={id}>{label}</label>
      <input id={id} name={name} defaultValue={input.type === "password" ? undefined : (state.values?.[name] ?? defaultValue)} aria-invalid={error !== undefined} aria-describedby={error === undefined ? undefined : `${id}-error`} {...input} />
      {hint !== undefined && error === undefined ? <p className="hint">{hint}</p> : null}
      {error !== undefined ? (
        <p className="error" id={`${id}-error`} role="alert">
          {error}
        </p>
      ) : null}
    </div>
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
