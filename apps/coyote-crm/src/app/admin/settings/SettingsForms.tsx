"use client";
import { ActionForm } from "../../../components/ActionForm.tsx";
import { CheckboxField, Field, TextAreaField } from "../../../components/Field.tsx";
import type { FormState } from "../../../lib/forms.ts";
import { saveAlarmsAction, saveHeartbeatAction, saveKeysAction, saveShopAction } from "./actions.ts";

/** A settings form's one button: "Saving…" while the action runs. */
function SaveButton({ label, pending }: { label: string; pending: boolean }) {
  return (
    <div>
      <button type="submit" disabled={pending}>
        {pending ? "Saving…" : label}
      </button>
    </div>
  );
}

/** Where alarms go: e-mail addresses and webhooks, one per line. */
export function AlarmsForm({ csrf, initial }: { csrf: string; initial: FormState }) {
  return (
    <ActionForm action={saveAlarmsAction} csrf={csrf} initial={initial} label="Alarm destinations">
      {(state, pending) => (
        <>
          <TextAreaField name="emails" label="E-mail addresses" rows={3} state={state} hint="One per line." />
          <TextAreaField name="webhooks" label="Webhooks" rows={2} state={state} hint="http(s) URLs, one per line; each alarm is POSTed to them as JSON." />
          <SaveButton label="Save alarm destinations" pending={pending} />
        </>
      )}
    </ActionForm>
  );
}

/** The provider API keys: only their masks are shown; an empty field keeps the stored key. */
export function KeysForm({ csrf, masks }: { csrf: string; masks: { vultr?: string; namecheap?: string } }) {
  const stored = (mask: string | undefined) => (mask === undefined ? "No key stored." : `Stored: ${mask}. Leave empty to keep it.`);
  return (
    <ActionForm action={saveKeysAction} csrf={csrf} label="Provider API keys">
      {(state, pending) => (
        <>
          <Field name="vultr" label="Vultr API key" type="password" autoComplete="off" spellCheck={false} state={state} hint={stored(masks.vultr)} />
          {masks.vultr === undefined ? null : <CheckboxField name="removeVultr" label="Remove the Vultr key" state={{}} />}
          <Field name="namecheapUser" label="Namecheap user name" autoComplete="off" spellCheck={false} state={state} hint={stored(masks.namecheap)} />
          <Field name="namecheapKey" label="Namecheap API key" type="password" autoComplete="off" spellCheck={false} state={state} />
          {masks.namecheap === undefined ? null : <CheckboxField name="removeNamecheap" label="Remove the Namecheap key" state={{}} />}
          <SaveButton label="Save keys" pending={pending} />
        </>
      )}
    </ActionForm>
  );
}

/** The shop: the domain customers get names under, and whether signups are open. */
export function ShopForm({ csrf, initial }: { csrf: string; initial: FormState }) {
  return (
    <ActionForm action={saveShopAction} csrf={csrf} initial={initial} label="Shop">
      {(state, pending) => (
        <>
          <Field name="customerDomain" label="Customer domain" placeholder="example.org" spellCheck={false} state={state} hint="Customers without a domain of their own get a name under this one. Leave empty for none." />
          <CheckboxField name="signupsOpen" label="Signups open" state={state} />
          <SaveButton label="Save shop settings" pending={pending} />
        </>
      )}
    </ActionForm>
  );
}

/** The buddies' heartbeat: how often, and how many missed ones make a buddy down. */
export function HeartbeatForm({ csrf, initial }: { csrf: string; initial: FormState }) {
  return (
    <ActionForm action={saveHeartbeatAction} csrf={csrf} initial={initial} label="Buddy heartbeat">
      {(state, pending) => (
        <>
          <Field name="intervalSeconds" label="Heartbeat every (seconds)" type="number" min={1} max={3600} required state={state} />
          <Field name="missedBeforeDown" label="Missed heartbeats before a buddy is down" type="number" min={1} max={100} required state={state} />
          <SaveButton label="Save heartbeat settings" pending={pending} />
        </>
      )}
    </ActionForm>
  );
}
