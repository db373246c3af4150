import { join } from "node:path";
import { ActuatorError } from "@coyote/actuator";
import { postfixMilterLines } from "./dkim-signer.ts";
import { MailFragment } from "./fragment.ts";
import { resolveOptions, tlsChainFileOf } from "./options.ts";
import { checkRendered, dovecotRuntime } from "./render-dovecot.ts";
import type { MailActuatorOptions, ResolvedOptions } from "./options.ts";

/** The map files in the Postfix config folder, by the parameter that names them. */
export const MAP_FILES = {
  virtualDomains: "virtual_domains",
  virtualMailboxes: "virtual_mailboxes",
  virtualAliases: "virtual_aliases",
  senderLogins: "sender_logins",
} as const;

function resolved(input: MailActuatorOptions | ResolvedOptions): ResolvedOptions {
  return "postfix" in input ? resolveOptions(input) : input;
}

const HEADER = "# Rendered by Coyote (actuator.mailconf.postfix): edits here are overwritten.";

/**
 * Renders the instance's `main.cf`. Pure and deterministic: the same options give the same bytes,
 * so `commit` can tell a change from a rewrite.
 *
 * The maps are `texthash:` tables: Postfix reads them into memory when a daemon starts, needs no
 * `postmap` step, and every change is made live by the one `postfix reload` that `commit` does
 * anyway. `hash:`/`lmdb:` would add a second file per map, built in place by `postmap` (not
 * atomically), and `lmdb:` needs the separate postfix-lmdb package; with a few thousand entries
 * the in-memory table costs nothing.
 *
 * Every hosted domain is a virtual mailbox domain: nothing is delivered locally
 * (`mydestination` is empty), unknown recipients of a hosted domain are rejected with
 * `550 5.1.1` (`smtpd_reject_unlisted_recipient`), and mail for any other domain is refused
 * (`reject_unauth_destination` with no `permit_mynetworks`: not even localhost may relay).
 * @param input the actuator's options (or the same, already resolved).
 * @param defaultHostname `myhostname` when the options do not set it (the server spec's hostname).
 * @throws ActuatorError `InvalidOptions` for a bad option.
 */
export function renderMainCf(input: MailActuatorOptions | ResolvedOptions, defaultHostname?: string): string {
  const options = resolved(input);
  const hostname = options.myhostname ?? defaultHostname;
  const map = (file: string) => `texthash:${join(options.configDir, file)}`;
  const chain = tlsChainFileOf(options, hostname);
  const lines = [
    HEADER,
    "compatibility_level = 3.6",
    `queue_directory = ${options.queueDirectory}`,
    `data_directory = ${options.dataDirectory}`,
    "syslog_name = postfix-coyote",
    ...(options.maillogFile === undefined ? [] : [`maillog_file = ${options.maillogFile}`, `maillog_file_prefixes = ${options.maillogFile}`]),
    ...(hostname === undefined ? [] : [`myhostname = ${hostname}`]),
    "myorigin = $myhostname",
    "inet_interfaces = all",
    "smtpd_banner = $myhostname ESMTP",
    // No address harvesting through VRFY, and no client that skips its HELO.
    "disable_vrfy_command = yes",
    "smtpd_helo_required = yes",
    "biff = no",
    "append_dot_mydomain = no",
    "readme_directory = no",
    "",
    "# No local delivery: every hosted address is virtual.",
    "mydestination =",
    "local_recipient_maps =",
    "local_transport = error:5.1.1 local delivery is disabled",
    "alias_maps =",
    "alias_database =",
    "relayhost =",
    "",
    "# No open relay, not even for localhost; unknown recipients of hosted domains get 550 5.1.1.",
    "smtpd_relay_restrictions = reject_unauth_destination",
    "smtpd_recipient_restrictions = reject_unlisted_recipient, reject_unauth_destination",
    "smtpd_reject_unlisted_recipient = yes",
    "unknown_virtual_mailbox_reject_code = 550",
    "unknown_virtual_alias_reject_code = 550",
    "",
    "# Virtual domains, mailboxes and aliases of every service, rebuilt by the actuator's commit.",
    `virtual_mailbox_domains = ${map(MAP_FILES.virtualDomains)}`,
    `virtual_mailbox_maps = ${map(MAP_FILES.virtualMailboxes)}`,
    `virtual_alias_maps = ${map(MAP_FILES.virtualAliases)}`,
    `virtual_mailbox_base = ${options.mailRoot}`,
    `virtual_uid_maps = static:${options.vmailUid}`,
    `virtual_gid_maps = static:${options.vmailGid}`,
    `virtual_minimum_uid = ${options.vmailUid}`,
    "virtual_transport = virtual",
    "",
    "# Sizes: one message, and one Maildir file, at most this big.",
    `message_size_limit = ${options.messageSizeLimit}`,
    `virtual_mailbox_limit = ${options.messageSizeLimit}`,
    `mailbox_size_limit = ${options.messageSizeLimit}`,
    "",
    "# TLS: offered on SMTP (STARTTLS), required on submission; TLS 1.2 or later, no weak ciphers.",
    ...(chain === undefined ? ["smtpd_tls_security_level = none"] : [`smtpd_tls_chain_files = ${chain}`, "smtpd_tls_security_level = may"]),
    "smtpd_tls_protocols = >=TLSv1.2",
    "smtpd_tls_mandatory_protocols = >=TLSv1.2",
    "smtpd_tls_ciphers = high",
    "smtpd_tls_mandatory_ciphers = high",
    "smtpd_tls_exclude_ciphers = aNULL, eNULL, EXPORT, LOW, DES, 3DES, RC4, MD5, PSK, SRP",
    "tls_preempt_cipherlist = yes",
    "smtpd_tls_loglevel = 1",
    "smtpd_tls_received_header = yes",
    "",
    "# Logins: only on the submission services (master.cf), only after TLS, and each login may",
    "# send only as the addresses it owns.",
    "smtpd_sasl_auth_enable = no",
    "smtpd_tls_auth_only = yes",
    `smtpd_sender_login_maps = ${map(MAP_FILES.senderLogins)}`,
    ...(options.dkimSigner === undefined ? [] : ["", ...postfixMilterLines(options.dkimSigner)]),
  ];
  return checkRendered(lines, "main.cf");
}

/**
 * The `-o` overrides of a submission service: logins through Dovecot's socket, TLS before them,
 * senders limited to their own addresses, and relaying for logged-in users only.
 */
function submissionOverrides(options: ResolvedOptions, name: string, wrapper: boolean): string[] {
  return [
    `syslog_name=postfix-coyote/${name}`,
    ...(wrapper ? ["smtpd_tls_wrappermode=yes"] : []),
    "smtpd_tls_security_level=encrypt",
    "smtpd_sasl_auth_enable=yes",
    "smtpd_sasl_type=dovecot",
    `smtpd_sasl_path=${dovecotRuntime(options).authSocket}`,
    "smtpd_sasl_security_options=noanonymous",
    "smtpd_client_restrictions=",
    "smtpd_sender_restrictions=reject_non_fqdn_sender,reject_sender_login_mismatch,permit_sasl_authenticated,reject",
    "smtpd_relay_restrictions=permit_sasl_authenticated,reject_unauth_destination",
    "smtpd_recipient_restrictions=reject_non_fqdn_recipient,permit_sasl_authenticated,reject",
    "milter_macro_daemon_name=ORIGINATING",
  ].map((override) => `  -o ${override}`);
}

/**
 * Renders the instance's `master.cf`: Debian's services without chroot (a chroot would need copies
 * of /etc files inside the queue folder, which Debian's init script makes only for the default
 * instance), SMTP on `smtpListen`, and the submission services (`submissionListen` with STARTTLS
 * required, `submissionsListen` with implicit TLS) when the options name them: only these accept
 * logins (SASL through Dovecot's socket), and only they relay, for logged-in senders using their
 * own addresses. `postlog` is there so that `maillog_file` works without syslog. Pure.
 * @param input the actuator's options (or the same, already resolved).
 * @throws ActuatorError `InvalidOptions` for a bad option.
 */
export function renderMasterCf(input: MailActuatorOptions | ResolvedOptions): string {
  const options = resolved(input);
  const services: Array<readonly [string, string, string, string, string, string, string, string]> = [
    [options.smtpListen, "inet", "n", "-", "n", "-", "-", "smtpd"],
    ["pickup", "unix", "n", "-", "n", "60", "1", "pickup"],
    ["cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"],
    ["qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"],
    ["rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"],
    ["bounce", "unix", "-", "-", "n", "-", "0", "bounce"],
    ["defer", "unix", "-", "-", "n", "-", "0", "bounce"],
    ["trace", "unix", "-", "-", "n", "-", "0", "bounce"],
    ["verify", "unix", "-", "-", "n", "-", "1", "verify"],
    ["flush", "unix", "n", "-", "n", "1000?", "0", "flush"],
    ["proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"],
    ["proxywrite", "unix", "-", "-", "n", "-", "1", "proxymap"],
    ["smtp", "unix", "-", "-", "n", "-", "-", "smtp"],
    ["relay", "unix", "-", "-", "n", "-", "-", "smtp"],
    ["showq", "unix", "n", "-", "n", "-", "-", "showq"],
    ["error", "unix", "-", "-", "n", "-", "-", "error"],
    ["retry", "unix", "-", "-", "n", "-", "-", "error"],
    ["discard", "unix", "-", "-", "n", "-", "-", "discard"],
    ["local", "unix", "-", "n", "n", "-", "-", "local"],
    ["virtual", "unix", "-", "n", "n", "-", "-", "virtual"],
    ["lmtp", "unix", "-", "-", "n", "-", "-", "lmtp"],
    ["anvil", "unix", "-", "-", "n", "-", "1", "anvil"],
    ["scache", "unix", "-", "-", "n", "-", "1", "scache"],
    ["postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"],
    ["tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr"],
  ];
  const row = (fields: readonly string[]) => fields.map((field, i) => (i === fields.length - 1 ? field : field.padEnd(i === 0 ? 16 : 11))).join(" ");
  const submission = (listen: string | undefined, name: string, wrapper: boolean) =>
    listen === undefined ? [] : [row([listen, "inet", "n", "-", "n", "-", "-", "smtpd"]), ...submissionOverrides(options, name, wrapper)];
  const lines = [
    HEADER,
    "# service        type        private     unpriv      chroot      wakeup      maxproc     command",
    ...services.map(row),
    ...submission(options.submissionListen, "submission", false),
    ...submission(options.submissionsListen, "submissions", true),
  ];
  return checkRendered(lines, "master.cf");
}

/** Two services claiming one domain: the first keeps it, the other's entries on it are left out. */
export interface DomainConflict {
  /** The domain. */
  readonly domain: string;
  /** The service that keeps it. */
  readonly owner: string;
  /** The service whose entries for it are left out. */
  readonly loser: string;
}

/** Where the Maildirs are and who owns them, for the Dovecot users file. */
export interface UsersFileOptions {
  /** `<mailRoot>/<domain>/<localpart>` is a mailbox's home and Maildir. */
  readonly mailRoot: string;
  /** The uid of every mailbox. */
  readonly vmailUid: number;
  /** The gid of every mailbox. */
  readonly vmailGid: number;
}

/** The combined files {@link renderMaps} makes from all fragments. */
export interface RenderedMaps {
  /** `virtual_domains`: `<domain> OK` per hosted domain. */
  readonly virtualDomains: string;
  /** `virtual_mailboxes`: `<address> <domain>/<localpart>/` (the trailing slash means Maildir). */
  readonly virtualMailboxes: string;
  /** `virtual_aliases`: `<address> <target>,<target>` and `@<domain> <target>` for a catch-all. */
  readonly virtualAliases: string;
  /** `sender_logins`: `<address> <login>,<login>`: who may send as each hosted address. */
  readonly senderLogins: string;
  /** Dovecot's passwd-file: `<address>:<{SCHEME}hash>:<uid>:<gid>::<home>::<extra fields>`. */
  readonly dovecotUsers: string;
  /** Which service owns each hosted domain (`<stateDir>/mail/domains.json`). */
  readonly owners: Readonly<Record<string, string>>;
  /** Domains claimed by more than one fragment. */
  readonly conflicts: readonly DomainConflict[];
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1);
}

function localPartOf(address: string): string {
  return address.slice(0, address.lastIndexOf("@"));
}

function fileOf(lines: string[], comment: string): string {
  return `${HEADER}\n# ${comment}\n${lines.sort().map((line) => `${line}\n`).join("")}`;
}

/** The role addresses every mail domain must answer (RFC 5321 postmaster, RFC 2142 abuse). */
export const ROLE_LOCAL_PARTS = ["postmaster", "abuse"] as const;

/**
 * Aliases for the role addresses a domain of the fragment does not define itself (neither a
 * mailbox nor an alias), to the service's first mailbox on that domain (else its first mailbox):
 * mail to postmaster@ (where the box's DMARC record sends reports) and abuse@ must not bounce. A
 * domain with a catch-all needs none; a service without mailboxes has no one to send them to.
 */
function roleAliases(fragment: MailFragment, owners: Readonly<Record<string, string>>, ownBoxes: ReadonlySet<string>): string[] {
  if (fragment.catchAll !== undefined) return [];
  const named = new Set([...ownBoxes, ...fragment.aliases.map((a) => a.address)].map((a) => a.toLowerCase()));
  const boxes = [...ownBoxes].sort();
  const lines: string[] = [];
  for (const domain of fragment.domains) {
    const target = boxes.find((box) => domainOf(box) === domain) ?? boxes[0];
    if (owners[domain] !== fragment.id || target === undefined) continue;
    for (const local of ROLE_LOCAL_PARTS) if (!named.has(`${local}@${domain}`)) lines.push(`${local}@${domain} ${target}`);
  }
  return lines;
}

/**
 * Validates a fragment again right before its values become lines of the maps and the users
 * file: each value must stay one field of one line (no colon, whitespace, NUL or line break in a
 * hash; addresses of a-z, 0-9 and `_'+.-`), whoever built the fragment.
 * @throws ActuatorError `InvalidFragment` (terminal), naming the service and field but never a hash.
 */
function checkedFragment(fragment: MailFragment): MailFragment {
  const parsed = MailFragment.safeParse(fragment);
  if (parsed.success) return parsed.data;
  const where = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ");
  throw new ActuatorError("InvalidFragment", `rendering the mail maps: the fragment of service ${JSON.stringify(fragment.id)} is invalid (${where})`, { terminal: true });
}

/**
 * Combines every service's fragment into the Postfix maps and the Dovecot users file. Pure and
 * deterministic (lines sorted), whatever order the fragments come in.
 *
 * A domain claimed by two fragments (two services given the same domain in one batch, before the
 * index told the second one it was taken) stays with its previous owner, or else with the lowest
 * service id; the other service's entries on that domain are left out and reported as conflicts.
 *
 * With a catch-all, every mailbox of the service also gets an identity alias (`a@d a@d`): Postfix
 * looks up `a@d` before `@d` in `virtual_alias_maps`, and without it the catch-all would take the
 * mailboxes' mail too.
 * @param fragments every service's fragment.
 * @param options where the Maildirs are, for the users file.
 * @param previousOwners the owners from the last commit, so that a domain never changes hands by accident.
 */
export function renderMaps(fragments: readonly MailFragment[], options: UsersFileOptions, previousOwners: Readonly<Record<string, string>> = {}): RenderedMaps {
  const sorted = fragments.map(checkedFragment).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const claims = new Map<string, string[]>();
  for (const fragment of sorted) {
    for (const domain of fragment.domains) claims.set(domain, [...(claims.get(domain) ?? []), fragment.id]);
  }
  const owners: Record<string, string> = {};
  const conflicts: DomainConflict[] = [];
  for (const [domain, ids] of [...claims].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const previous = previousOwners[domain];
    const owner = previous !== undefined && ids.includes(previous) ? previous : (ids[0] ?? "");
    owners[domain] = owner;
    for (const loser of ids) if (loser !== owner) conflicts.push({ domain, owner, loser });
  }
  const domains: string[] = [];
  const mailboxes: string[] = [];
  const aliases: string[] = [];
  const users: string[] = [];
  const senders: string[] = [];
  for (const fragment of sorted) {
    const owned = (address: string) => owners[domainOf(address)] === fragment.id;
    for (const domain of fragment.domains) {
      if (owners[domain] !== fragment.id) continue;
      domains.push(`${domain} OK`);
      if (fragment.catchAll !== undefined) aliases.push(`@${domain} ${fragment.catchAll}`);
    }
    for (const box of fragment.mailboxes.filter((m) => owned(m.address))) {
      const domain = domainOf(box.address);
      const local = localPartOf(box.address);
      mailboxes.push(`${box.address} ${domain}/${local}/`);
      if (fragment.catchAll !== undefined) aliases.push(`${box.address} ${box.address}`);
      const extra = ["userdb_mail=maildir:~", ...(box.quotaMb === undefined ? [] : [`userdb_quota_rule=*:storage=${box.quotaMb}M`])];
      senders.push(`${box.address} ${box.address}`);
      users.push(`${box.address}:${box.passwordHash}:${options.vmailUid}:${options.vmailGid}::${options.mailRoot}/${domain}/${local}::${extra.join(" ")}`);
    }
    const ownBoxes = new Set(fragment.mailboxes.filter((m) => owned(m.address)).map((m) => m.address));
    for (const alias of fragment.aliases.filter((a) => owned(a.address))) {
      aliases.push(`${alias.address} ${alias.to.join(",")}`);
      // An alias may be sent from by the service's own mailboxes it forwards to.
      const logins = alias.to.map((to) => to.toLowerCase()).filter((to) => ownBoxes.has(to));
      if (logins.length > 0) senders.push(`${alias.address} ${[...new Set(logins)].sort().join(",")}`);
    }
    aliases.push(...roleAliases(fragment, owners, ownBoxes));
  }
  return {
    virtualDomains: fileOf(domains, "virtual_mailbox_domains (texthash): one hosted domain per line."),
    virtualMailboxes: fileOf(mailboxes, "virtual_mailbox_maps (texthash): address and Maildir under virtual_mailbox_base."),
    virtualAliases: fileOf(aliases, "virtual_alias_maps (texthash): address (or @domain for a catch-all) and its targets."),
    senderLogins: fileOf(senders, "smtpd_sender_login_maps (texthash): a hosted address and the logins that may send as it."),
    dovecotUsers: users.sort().map((line) => `${line}\n`).join(""),
    owners,
    conflicts,
  };
}
