"use client";
import { ActionForm } from "../../../../components/ActionForm.tsx";
import { Field, SelectField } from "../../../../components/Field.tsx";
import { NewPasswordFields } from "../../../../components/shop/NewPassword.tsx";
import { addAliasAction, addMailboxAction, setMailboxPasswordAction } from "./actions.ts";

/** The domain of a new address: a select when the service has more than one domain. Named per form, so that no two fields of the page share an id. */
function DomainChoice({ name, domains, state }: { name: string; domains: readonly string[]; state: Parameters<typeof Field>[0]["state"] }) {
  if (domains.length === 1) return <input type="hidden" name={name} value={domains[0]} />;
  return <SelectField name={name} label="Domain" state={state} options={domains.map((d) => ({ value: d, label: `@${d}` }))} />;
}

/** The form that adds a mailbox: its name, domain and password. */
export function AddMailboxForm({ csrf, service, domains }: { csrf: string; service: string; domains: readonly string[] }) {
  return (
    <ActionForm action={addMailboxAction} csrf={csrf} label="Add a mailbox">
      {(state, pending) => (
        <>
          <input type="hidden" name="service" value={service} />
          <Field name="mailbox" label="New mailbox" autoComplete="off" required maxLength={64} state={state} hint={`The part before the @${domains.length === 1 ? ` (…@${domains[0] ?? ""})` : ""}: a-z, 0-9, dot, hyphen, underscore.`} />
          <DomainChoice name="mailboxDomain" domains={domains} state={state} />
          <NewPasswordFields state={state} pending={pending} names={["password", "confirm"]} labels={["Mailbox password", "Repeat mailbox password"]} hint="Its own password, at least 10 characters." submit={["Add mailbox", "Adding…"]} />
        </>
      )}
    </ActionForm>
  );
}

/** The form that adds an alias: its name, domain and the mailbox it forwards to. */
export function AddAliasForm({ csrf, service, domains, mailboxes }: { csrf: string; service: string; domains: readonly string[]; mailboxes: readonly string[] }) {
  return (
    <ActionForm action={addAliasAction} csrf={csrf} label="Add an alias">
      {(state, pending) => (
        <>
          <input type="hidden" name="service" value={service} />
          <Field name="alias" label="New alias" autoComplete="off" required maxLength={64} state={state} hint="The part before the @; role addresses such as postmaster and abuse can only be aliases." />
          <DomainChoice name="aliasDomain" domains={domains} state={state} />
          <SelectField name="to" label="Forwards to" state={state} options={mailboxes.map((m) => ({ value: m, label: m }))} />
          <button type="submit" disabled={pending}>
            {pending ? "Adding…" : "Add alias"}
          </button>
        </>
      )}
    </ActionForm>
  );
}

/** The form that gives one of the mailboxes the customer added a new password. */
export function MailboxPasswordForm({ csrf, service, mailboxes }: { csrf: string; service: string; mailboxes: readonly string[] }) {
  return (
    <ActionForm action={setMailboxPasswordAction} csrf={csrf} label="Set a mailbox's password">
      {(state, pending) => (
        <>
          <input type="hidden" name="service" value={service} />
          <SelectField name="address" label="Mailbox" state={state} options={mailboxes.map((m) => ({ value: m, label: m }))} />
          <NewPasswordFields state={state} pending={pending} names={["mailboxPassword", "mailboxConfirm"]} labels={["Its new password", "Repeat its new password"]} submit={["Set password", "Setting…"]} />
        </>
      )}
    </ActionForm>
  );
}
