import type { ServerSpec } from "@coyote/spec";

/**
 * Ports the box's own daemons serve on, whatever the server spec says: a unit on one of them
 * could be handed traffic meant for mail, DNS, the web front or XMPP.
 */
export const DAEMON_PORTS: ReadonlyMap<number, string> = new Map([
  [25, "SMTP"],
  [53, "DNS"],
  [80, "HTTP"],
  [110, "POP3"],
  [143, "IMAP"],
  [443, "HTTPS"],
  [465, "SMTP submission over TLS"],
  [587, "SMTP submission"],
  [993, "IMAPS"],
  [995, "POP3S"],
  [5222, "XMPP clients"],
  [5269, "XMPP servers"],
  [5280, "XMPP over HTTP"],
]);

function portOf(hostPort: string): number {
  return Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));
}

/**
 * Every port a unit must not take on this box, with what uses it: {@link DAEMON_PORTS} and the
 * ports the server spec gives snitch-proxy, the panel, DNS, mail and XMPP. Pure.
 */
export function reservedPorts(server: ServerSpec): Map<number, string> {
  const out = new Map(DAEMON_PORTS);
  out.set(server.ports.http, "snitch-proxy's HTTP listener (server spec ports.http)");
  out.set(server.ports.https, "snitch-proxy's HTTPS listener (server spec ports.https)");
  out.set(server.ports.panel, "the panel (server spec ports.panel)");
  for (const listen of server.dns.listen) out.set(portOf(listen), `DNS (server spec dns.listen ${listen})`);
  out.set(portOf(server.mail.smtpListen), `SMTP (server spec mail.smtpListen ${server.mail.smtpListen})`);
  out.set(server.xmpp.clientPort, "XMPP clients (server spec xmpp.clientPort)");
  out.set(server.xmpp.serverPort, "XMPP servers (server spec xmpp.serverPort)");
  return out;
}
