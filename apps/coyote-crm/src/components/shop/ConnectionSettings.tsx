import type { ConnectionSettings, Endpoint } from "../../lib/shop/connection-settings.ts";

function endpoints(list: readonly Endpoint[]): string {
  return list.map((e) => `${e.port} (${e.security === "TLS" ? "SSL/TLS" : "STARTTLS"})`).join(" or ");
}

/**
 * The settings to type into a mail app and a chat app: server, ports with their security, and the
 * user name (the full address). Passwords are never shown: the panel keeps none in clear.
 */
export function ConnectionCards({ settings, mailAddress, xmppAddress }: { settings: ConnectionSettings; mailAddress: string | undefined; xmppAddress: string | undefined }) {
  return (
    <>
      {mailAddress === undefined ? null : (
        <div className="card" aria-label="Mail app settings">
          <h3>Mail</h3>
          <dl>
            <dt>Address</dt>
            <dd>{mailAddress}</dd>
            <dt>Incoming mail (IMAP) server</dt>
            <dd>
              <code>{settings.host}</code>, port {endpoints(settings.imap)}
            </dd>
            <dt>Outgoing mail (SMTP) server</dt>
            <dd>
              <code>{settings.host}</code>, port {endpoints(settings.smtp)}, with your user name and password
            </dd>
            <dt>User name</dt>
            <dd>the mailbox&apos;s full address, like {mailAddress}</dd>
          </dl>
          <p className="muted">The password is your account&apos;s for this mailbox, and each mailbox you added has its own.</p>
        </div>
      )}
      {xmppAddress === undefined ? null : (
        <div className="card" aria-label="Chat app settings">
          <h3>XMPP chat</h3>
          <dl>
            <dt>Address (JID)</dt>
            <dd>{xmppAddress}</dd>
            <dt>Server</dt>
            <dd>
              <code>{settings.host}</code>, port {endpoints([settings.xmpp])}
            </dd>
            <dt>User name</dt>
            <dd>{xmppAddress}</dd>
          </dl>
          <p className="muted">The password is your account&apos;s.</p>
        </div>
      )}
    </>
  );
}
