// A real mail client in the test process, set up only from what the account page shows: the server
// name, each port and its security. It sends over submission with a login and reads over IMAP, with
// TLS verified against the box's own CA for the server name shown (verification stays on).
import { readFile } from "node:fs/promises";
import type { Locator } from "@playwright/test";
import { ImapFlow } from "imapflow";
import nodemailer from "nodemailer";
import type SMTPTransport from "nodemailer/lib/smtp-transport";
import { waitFor } from "@coyote/testing";
import { BOX_HOSTNAME, type ApplianceInfo } from "./appliance.ts";

/** How a port is secured, as the page words it: TLS from the first byte, or STARTTLS after a plain greeting. */
export type Security = "SSL/TLS" | "STARTTLS";

/** One way in, as the page shows it. */
export interface ShownEndpoint {
  readonly port: number;
  readonly security: Security;
}

/** A mail server as the page shows it: its name and its ports. */
export interface ShownServer {
  readonly host: string;
  readonly endpoints: readonly ShownEndpoint[];
}

/** Everything the "Mail app settings" card tells a customer. */
export interface ShownMailSettings {
  readonly address: string;
  readonly imap: ShownServer;
  readonly smtp: ShownServer;
  readonly userName: string;
}

/** A mailbox's login. */
export interface MailLogin {
  readonly user: string;
  readonly pass: string;
}

/** Deadlines of every client connection: a daemon that does not answer fails the test, never hangs it. */
const LIMITS = { connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 30_000 } as const;

/** Parses "box.test, port 993 (SSL/TLS) or 143 (STARTTLS)…" into the server name and its endpoints. */
export function parseServer(what: string, text: string): ShownServer {
  const host = /^\s*([a-z0-9.-]+),\s*port\s/i.exec(text)?.[1];
  const endpoints = [...text.matchAll(/(\d{1,5}) \((SSL\/TLS|STARTTLS)\)/g)].map((m) => ({ port: Number(m[1]), security: m[2] as Security }));
  if (host === undefined || endpoints.length === 0) throw new Error(`reading the ${what} settings: no "<server>, port <n> (<security>)" in "${text}"`);
  return { host, endpoints };
}

/**
 * Reads the "Mail app settings" card: its terms and their definitions, in order.
 * @throws when a setting a mail app needs is not shown.
 */
export async function readMailSettings(card: Locator): Promise<ShownMailSettings> {
  const terms = (await card.getByRole("term").allInnerTexts()).map((t) => t.trim());
  const definitions = (await card.getByRole("definition").allInnerTexts()).map((d) => d.trim());
  const shown = (term: string): string => {
    const at = terms.indexOf(term);
    const text = at < 0 ? undefined : definitions[at];
    if (text === undefined) throw new Error(`reading the mail settings: no "${term}" among ${JSON.stringify(terms)}`);
    return text;
  };
  return { address: shown("Address"), imap: parseServer("IMAP", shown("Incoming mail (IMAP) server")), smtp: parseServer("SMTP", shown("Outgoing mail (SMTP) server")), userName: shown("User name") };
}

/** The one endpoint of `server` with `security`. */
export function endpoint(server: ShownServer, security: Security): ShownEndpoint {
  const found = server.endpoints.find((e) => e.security === security);
  if (found === undefined) throw new Error(`the page shows no ${security} port for ${server.host} (only ${JSON.stringify(server.endpoints)})`);
  return found;
}

/**
 * The address a client reaches a shown server name at. The test box has no DNS entry on the
 * internet and listens on loopback only, so its host name, and nothing else, stands for 127.0.0.1;
 * the TLS checks still use the name shown.
 */
function addressOf(host: string): string {
  if (host !== BOX_HOSTNAME) throw new Error(`the page names the mail server ${host}, but the test box is ${BOX_HOSTNAME}`);
  return "127.0.0.1";
}

/** TLS options that trust only the box's CA and check its certificate is for `host`. */
async function tlsFor(box: ApplianceInfo, host: string): Promise<{ ca: string; servername: string; rejectUnauthorized: true; minVersion: "TLSv1.2" }> {
  return { ca: await readFile(box.caFile, "utf8"), servername: host, rejectUnauthorized: true, minVersion: "TLSv1.2" };
}

/**
 * Sends one message through the shown submission endpoint with `login`: TLS from the first byte
 * on an SSL/TLS port, a required STARTTLS on the other.
 * @returns the recipients the server accepted.
 * @throws the client's error (with its `responseCode`) when the server refuses.
 */
export async function submit(box: ApplianceInfo, server: ShownServer, via: ShownEndpoint, login: MailLogin | undefined, message: { from: string; to: string; subject: string; text: string }): Promise<string[]> {
  const options: SMTPTransport.Options = {
    host: addressOf(server.host),
    port: via.port,
    secure: via.security === "SSL/TLS",
    requireTLS: via.security === "STARTTLS",
    tls: await tlsFor(box, server.host),
    ...(login === undefined ? {} : { auth: login }),
    ...LIMITS,
  };
  const transport = nodemailer.createTransport(options);
  try {
    const info = await transport.sendMail(message);
    return info.accepted.map((a: string | { address: string }) => (typeof a === "string" ? a : a.address));
  } finally {
    transport.close();
  }
}

/** An IMAP session on the shown endpoint with `login`: TLS from the first byte, or a required STARTTLS. */
async function imapSession(box: ApplianceInfo, server: ShownServer, via: ShownEndpoint, login: MailLogin): Promise<ImapFlow> {
  const imap = new ImapFlow({
    host: addressOf(server.host),
    servername: server.host,
    port: via.port,
    secure: via.security === "SSL/TLS",
    doSTARTTLS: via.security === "STARTTLS" ? true : undefined,
    tls: await tlsFor(box, server.host),
    auth: login,
    logger: false,
    disableAutoIdle: true,
    ...LIMITS,
  });
  // A refused login also ends in an "error" event; without a listener it would crash the worker.
  imap.on("error", () => undefined);
  await imap.connect();
  return imap;
}

/**
 * Waits (at most `timeoutMs`) until the INBOX of `login` holds a message with `subject`, and
 * returns its whole source.
 * @throws when the login is refused or the message does not arrive in time.
 */
export async function fetchBySubject(box: ApplianceInfo, server: ShownServer, via: ShownEndpoint, login: MailLogin, subject: string, timeoutMs = 30_000): Promise<string> {
  const imap = await imapSession(box, server, via, login);
  try {
    return await waitFor(
      `the message "${subject}" in ${login.user}'s INBOX on ${server.host}:${via.port}`,
      async () => {
        const lock = await imap.getMailboxLock("INBOX");
        try {
          for await (const message of imap.fetch("1:*", { envelope: true, source: true })) {
            if (message.envelope?.subject === subject) return message.source?.toString("utf8");
          }
          return undefined;
        } finally {
          lock.release();
        }
      },
      { timeoutMs, intervalMs: 250 },
    );
  } finally {
    await imap.logout().catch(() => undefined);
  }
}

/** Whether the server refuses `login` over the shown IMAP endpoint (an authentication failure, not a broken connection). */
export async function imapRefuses(box: ApplianceInfo, server: ShownServer, via: ShownEndpoint, login: MailLogin): Promise<boolean> {
  try {
    const imap = await imapSession(box, server, via, login);
    await imap.logout().catch(() => undefined);
    return false;
  } catch (error) {
    if ((error as { authenticationFailed?: boolean }).authenticationFailed === true) return true;
    throw error;
  }
}

/** The SMTP reply code the shown submission endpoint refuses a message with, or 0 when it takes it. */
export async function submissionRefusal(box: ApplianceInfo, server: ShownServer, via: ShownEndpoint, login: MailLogin | undefined, message: { from: string; to: string; subject: string; text: string }): Promise<number> {
  try {
    await submit(box, server, via, login, message);
    return 0;
  } catch (error) {
    const code = (error as { responseCode?: number }).responseCode;
    if (code === undefined) throw error;
    return code;
  }
}
