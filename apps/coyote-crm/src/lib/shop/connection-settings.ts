// What a customer types into a mail or chat app: the box's mail hostname (the name the MX records of
// every hosted domain point at, and the name its certificate is issued for) and the ports of its
// listeners, all read from the server spec.
import type { ServerSpec } from "@coyote/spec";

/** How a connection is secured: TLS from the first byte, or STARTTLS after a plain greeting. */
export type Security = "TLS" | "STARTTLS";

/** One way in: a port and its security. */
export interface Endpoint {
  readonly port: number;
  readonly security: Security;
}

/** The settings of a mail or chat app, for one account. */
export interface ConnectionSettings {
  /** The server name the apps connect to (the box's hostname). */
  readonly host: string;
  /** Incoming mail (IMAP), the implicit-TLS port first. */
  readonly imap: readonly Endpoint[];
  /** Outgoing mail (SMTP submission, with a login), the implicit-TLS port first. */
  readonly smtp: readonly Endpoint[];
  /** Chat (XMPP client connections). */
  readonly xmpp: Endpoint;
}

/** The standard ports, shown when the server spec names no listener of that kind. */
export const STANDARD_PORTS = { imaps: 993, imap: 143, submissions: 465, submission: 587 } as const;

/** The port of a `host:port` or `[v6]:port` listener, or `fallback` when there is none. */
export function portOf(listen: string | undefined, fallback: number): number {
  const match = listen === undefined ? null : /:(\d{1,5})$/.exec(listen);
  const port = match === null ? Number.NaN : Number(match[1]);
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? port : fallback;
}

/**
 * The connection settings of the box's mail and chat, from the server spec: the hostname, the
 * ports of the mail listeners it names (the standard ones where it names none) and the XMPP
 * client port. The user name is always the account's full address.
 */
export function connectionSettings(server: Pick<ServerSpec, "hostname" | "mail" | "xmpp">): ConnectionSettings {
  const { mail } = server;
  return {
    host: server.hostname,
    imap: [
      { port: portOf(mail.imapsListen, STANDARD_PORTS.imaps), security: "TLS" },
      { port: portOf(mail.imapListen, STANDARD_PORTS.imap), security: "STARTTLS" },
    ],
    smtp: [
      { port: portOf(mail.submissionsListen, STANDARD_PORTS.submissions), security: "TLS" },
      { port: portOf(mail.submissionListen, STANDARD_PORTS.submission), security: "STARTTLS" },
    ],
    xmpp: { port: server.xmpp.clientPort, security: "STARTTLS" },
  };
}
