import { ActionButton } from "../../../../components/admin/ActionButton.tsx";
import type { MailAccountsView } from "../../../../lib/shop/mail-accounts.ts";
import { removeAliasAction, removeMailboxAction } from "./actions.ts";
import { AddAliasForm, AddMailboxForm, MailboxPasswordForm } from "./MailForms.tsx";

/** A service's mailboxes and aliases, with what the plan allows and the forms that change them. */
export function MailAccounts({ csrf, service, view }: { csrf: string; service: string; view: MailAccountsView }) {
  const mailboxes = view.mailboxes.map((m) => m.address);
  const added = view.mailboxes.filter((m) => !m.own).map((m) => m.address);
  return (
    <section aria-labelledby="mail-accounts-heading">
      <h2 id="mail-accounts-heading">Mailboxes and aliases</h2>
      <p className="muted">
        {view.mailboxes.length} of {view.maxMailboxes} mailboxes, {view.aliases.length} of {view.maxAliases} aliases in your plan.
      </p>
      <table aria-label="Mailboxes">
        <thead>
          <tr>
            <th>Mailbox</th>
            <th>Aliases to it</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {view.mailboxes.map((m) => (
            <tr key={m.address} data-mailbox={m.address}>
              <td>{m.address}</td>
              <td>{m.forwardedFrom.length === 0 ? <span className="muted">none</span> : m.forwardedFrom.join(", ")}</td>
              <td>{m.own ? <span className="muted">your account&apos;s mailbox</span> : <ActionButton action={removeMailboxAction} csrf={csrf} fields={{ service, address: m.address }} label={`Remove ${m.address}`} pendingLabel="Removing…" />}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {view.aliases.length === 0 ? null : (
        <table aria-label="Aliases">
          <thead>
            <tr>
              <th>Alias</th>
              <th>Forwards to</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {view.aliases.map((a) => (
              <tr key={a.address} data-alias={a.address}>
                <td>{a.address}</td>
                <td>{a.to.join(", ")}</td>
                <td>
                  <ActionButton action={removeAliasAction} csrf={csrf} fields={{ service, address: a.address }} label={`Remove ${a.address}`} pendingLabel="Removing…" />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {view.mailboxes.length < view.maxMailboxes ? <AddMailboxForm csrf={csrf} service={service} domains={view.domains} /> : <p>Your plan&apos;s mailboxes are all in use.</p>}
      {added.length === 0 ? null : <MailboxPasswordForm csrf={csrf} service={service} mailboxes={added} />}
      {view.aliases.length < view.maxAliases ? <AddAliasForm csrf={csrf} service={service} domains={view.domains} mailboxes={mailboxes} /> : null}
    </section>
  );
}
