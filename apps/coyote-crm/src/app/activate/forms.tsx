"use client";
import { ActionForm } from "../../components/ActionForm.tsx";
import { CheckboxField, Field, TextAreaField } from "../../components/Field.tsx";
import { createAdmin, finishStep, saveAlarmsStep, saveBuddyStep, saveKeysStep } from "./actions.ts";

/** The buttons of a step that may be skipped: go on with what was entered, or without it. */
function ContinueOrSkip({ label, pending }: { label: string; pending: boolean }) {
  return (
    <div className="row">
      <button type="submit" disabled={pending}>
        {label}
      </button>
      <button type="submit" name="skip" value="1" className="secondary" disabled={pending}>
        Skip for now
      </button>
    </div>
  );
}

/** Step 1: token and admin account. */
export function AdminForm({ csrf }: { csrf: string }) {
  return (
    <ActionForm action={createAdmin} csrf={csrf}>
      {(state, pending) => (
        <>
          <Field name="token" label="Activation token" hint="printed by coyote up (or install.sh) when the box started; XXXX-XXXX-XXXX-XXXX-XXXX" autoComplete="off" spellCheck={false} required state={state} />
          <Field name="email" label="Admin e-mail" type="email" autoComplete="username" required state={state} />
          <Field name="password" label="Password" type="password" autoComplete="new-password" hint="at least 10 characters, not a common password" required state={state} />
          <Field name="confirm" label="Repeat password" type="password" autoComplete="new-password" required state={state} />
          <button type="submit" disabled={pending}>
            {pending ? "Activating…" : "Activate"}
          </button>
        </>
      )}
    </ActionForm>
  );
}

/** Step 2: alarm destinations. */
export function AlarmsForm({ csrf, emails, webhooks }: { csrf: string; emails: string; webhooks: string }) {
  return (
    <ActionForm action={saveAlarmsStep} csrf={csrf}>
      {(state, pending) => (
        <>
          <TextAreaField name="emails" label="Alarm e-mail addresses" hint="one per line; they get an e-mail when something needs a human" state={state} defaultValue={emails} />
          <TextAreaField name="webhooks" label="Alarm webhooks" hint="one URL per line; each alarm is POSTed to them as JSON" state={state} defaultValue={webhooks} />
          <button type="submit" disabled={pending}>
            Save and continue
          </button>
        </>
      )}
    </ActionForm>
  );
}

/** Step 3: provider API keys. */
export function KeysForm({ csrf, masks }: { csrf: string; masks: { vultr?: string; namecheap?: string } }) {
  return (
    <ActionForm action={saveKeysStep} csrf={csrf}>
      {(state, pending) => (
        <>
          <Field name="vultr" label="Vultr API key" hint={masks.vultr === undefined ? "lets this box create new servers at Vultr" : `saved (${masks.vultr}); leave empty to keep it`} autoComplete="off" spellCheck={false} state={state} />
          <Field name="namecheapUser" label="Namecheap user name" autoComplete="off" state={state} />
          <Field name="namecheapKey" label="Namecheap API key" hint={masks.namecheap === undefined ? "lets this box register domains and set their name servers" : `saved (${masks.namecheap}); leave empty to keep it`} autoComplete="off" spellCheck={false} state={state} />
          <p className="hint">Keys are kept in the box&apos;s secrets folder and never shown again in full.</p>
          <ContinueOrSkip label="Save and continue" pending={pending} />
        </>
      )}
    </ActionForm>
  );
}

/** Step 4: a buddy server. */
export function BuddyForm({ csrf }: { csrf: string }) {
  return (
    <ActionForm action={saveBuddyStep} csrf={csrf}>
      {(state, pending) => (
        <>
          <Field name="name" label="Buddy name" autoComplete="off" state={state} />
          <Field name="address" label="Buddy address" placeholder="https://buddy.example.org:8443" hint="where its coyote-listener answers, over HTTPS" autoComplete="off" state={state} />
          <Field name="fingerprint" label="Buddy fingerprint" placeholder="sha256:…" hint="the buddy's key fingerprint, from its own panel; it is checked on every connection" autoComplete="off" spellCheck={false} state={state} />
          <ContinueOrSkip label="Add buddy and continue" pending={pending} />
        </>
      )}
    </ActionForm>
  );
}

/** Step 5: the customer domain and opening the shop. */
export function FinishForm({ csrf, customerDomain }: { csrf: string; customerDomain: string }) {
  return (
    <ActionForm action={finishStep} csrf={csrf}>
      {(state, pending) => (
        <>
          <Field name="customerDomain" label="Customer domain" defaultValue={customerDomain} placeholder="customers.example.org" hint="customers may take a name under it (alice.customers.example.org); leave empty to take own domains only" autoComplete="off" state={state} />
          <CheckboxField name="signupsOpen" label="Open signups now" defaultChecked state={state} />
          <button type="submit" disabled={pending}>
            {pending ? "Activating…" : "Finish activation"}
          </button>
        </>
      )}
    </ActionForm>
  );
}
