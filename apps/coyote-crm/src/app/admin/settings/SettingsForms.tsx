"use client";
import { useActionState } from "react";
import { CheckboxField, Field, FormMessage, TextAreaField } from "../../../components/Field.tsx";
import type { FormState } from "../../../lib/forms.ts";
import { saveAlarmsAction, saveHeartbeatAction, saveKeysAction, saveShopAction } from "./actions.ts";

/** Where alarms go: e-mail addresses and webhooks, one per line. */
export function AlarmsForm({ csrf, initial }: { csrf: string; initial: FormState }) {
  const [state, action, pending] = useActionState(saveAlarmsAction, initial);
  return (
    <form action={action} className="card form" noValidate aria-label="Alarm destinations">
      <input type="hidden" name="csrf" value={csrf} />
      <FormMessage state={state} />
      <TextAreaField name="emails" label="E-mail addresses" rows={3} state={state} hint="One per line." />
      <TextAreaField name="webhooks" label="Webhooks" rows={2} state={state} hint="http(s) URLs, one per line; each alarm is POSTed to them as JSON." />
      <div>
        <button type="submit" disabled={pending}>
          {pending ? "Saving…" : "Save alarm destinations"}
        </button>
      </div>
    </form>
  );
}

/** The provider API keys: only their masks are shown; an empty field keeps the stored key. */
export function KeysForm({ csrf, masks }: { csrf: string; masks: { vultr?: string; namecheap?: string } }) {
  const [state, action, pending] = useActionState(saveKeysAction, {});
  const stored = (mask: string | undefined) => (mask === undefined ? "No key stored." : `Stored: ${mask}. Leave empty to keep it.`);
  return (
    <form action={action} className="card form" noValidate aria-label="Provider API keys">
      <input type="hidden" name="csrf" value={csrf} />
      <FormMessage state={state} />
      <Field name="vultr" label="Vultr API key" type="password" autoComplete="off" spellCheck={false} state={state} hint={stored(masks.vultr)} />
      {masks.vultr === undefined ? null : <CheckboxField name="removeVultr" label="Remove the Vultr key" state={{}} />}
      <Field name="namecheapUser" label="Namecheap user name" autoComplete="off" spellCheck={false} state={state} hint={stored(masks.namecheap)} />
      <Field name="namecheapKey" label="Namecheap API key" type="password" autoComplete="off" spellCheck={false} state={state} />
      {masks.namecheap === undefined ? null : <CheckboxField name="removeNamecheap" label="Remove the Namecheap key" state={{}} />}
      <div>
        <button type="submit" disabled={pending}>
          {pending ? "Saving…" : "Save keys"}
        </button>
      </div>
    </form>
  );
}

/** The shop: the domain customers get names under, and whether signups are open. */
export function ShopForm({ csrf, initial }: { csrf: string; initial: FormState }) {
  const [state, action, pending] = useActionState(saveShopAction, initial);
  return (
    <form action={action} className="card form" noValidate aria-label="Shop">
      <input type="hidden" name="csrf" value={csrf} />
      <FormMessage state={state} />
      <Field name="customerDomain" label="Customer domain" placeholder="example.org" spellCheck={false} state={state} hint="Customers without a domain of their own get a name under this one. Leave empty for none." />
      <CheckboxField name="signupsOpen" label="Signups open" state={state} />
      <div>
        <button type="submit" disabled={pending}>
          {pending ? "Saving…" : "Save shop settings"}
        </button>
      </div>
    </form>
  );
}

/** The buddies' heartbeat: how often, and how many missed ones make a buddy down. */
export function HeartbeatForm({ csrf, initial }: { csrf: string; initial: FormState }) {
  const [state, action, pending] = useActionState(saveHeartbeatAction, initial);
  return (
    <form action={action} className="card form" noValidate aria-label="Buddy heartbeat">
      <input type="hidden" name="csrf" value={csrf} />
      <FormMessage state={state} />
      <Field name="intervalSeconds" label="Heartbeat every (seconds)" type="number" min={1} max={3600} required state={state} />
      <Field name="missedBeforeDown" label="Missed heartbeats before a buddy is down" type="number" min={1} max={100} required state={state} />
      <div>
        <button type="submit" disabled={pending}>
          {pending ? "Saving…" : "Save heartbeat settings"}
        </button>
      </div>
    </form>
  );
}
