// Which addresses a customer may make on their own domains: the local part's rules (a strict
// subset of RFC 5321's dot-atom that every part of the mail chain reads the same way, unquoted) and
// the names that are not theirs to take.

/** The longest local part (RFC 5321, 4.5.3.1.1). */
export const MAX_LOCAL_PART = 64;

/**
 * Names the mail system itself uses or that programs read specially: the bounce sender, the system
 * accounts of the daemons and of the machine. No customer address may have them, as a mailbox or an
 * alias: mail to them must never reach a customer's mailbox by accident of a name.
 */
export const SYSTEM_LOCAL_PARTS: ReadonlySet<string> = new Set([
  "mailer-daemon",
  "root",
  "daemon",
  "bin",
  "sys",
  "nobody",
  "operator",
  "system",
  "postfix",
  "dovecot",
  "prosody",
  "opendkim",
  "knot",
  "vmail",
  "coyote",
]);

/**
 * Role addresses: those of RFC 2142 (the box's DNS sends DMARC reports to `postmaster@`), and the
 * five a certificate authority may mail to prove control of a domain (`admin`, `administrator`,
 * `hostmaster`, `postmaster`, `webmaster`, CA/Browser Forum Baseline Requirements 3.2.2.4.4).
 * They belong to whoever runs the domain, so a customer may point them at one of their own
 * mailboxes as an alias, but never make them a mailbox: a mailbox can sign in and send, and mail
 * from `postmaster@` or `abuse@` is trusted by readers as the domain's own voice.
 */
export const ROLE_LOCAL_PARTS: ReadonlySet<string> = new Set(["postmaster", "abuse", "hostmaster", "webmaster", "admin", "administrator", "security", "noc"]);

/** What a local part is for: a mailbox (which signs in) or an alias (which only receives). */
export type LocalPartUse = "mailbox" | "alias";

/** A typed local part as the shop compares it: without surrounding spaces, in lowercase. */
export function normalizeLocalPart(input: string): string {
  return input.trim().toLowerCase();
}

/**
 * Why a (normalized) local part cannot be made, or undefined when it can. The accepted shape is
 * 1-64 of a-z, 0-9, dot, hyphen and underscore, starting and ending with a letter or digit, with no
 * two dots in a row: no quoting, no `+` (the subaddress separator), nothing a program could read as
 * an option or a path.
 * @param local the local part, already {@link normalizeLocalPart normalized}.
 * @param use whether it is to be a mailbox or an alias.
 */
export function localPartProblem(local: string, use: LocalPartUse): string | undefined {
  if (local === "") return "enter the part of the address before the @";
  if (local.length > MAX_LOCAL_PART) return `the part before the @ has at most ${MAX_LOCAL_PART} characters (this one has ${local.length})`;
  const bad = /[^a-z0-9._-]/u.exec(local);
  if (bad !== null) {
    const shown = bad[0] === "@" ? "@ (type only the part before it)" : bad[0] === " " ? "a space" : /^[\p{L}\p{N}\p{P}\p{S}]$/u.test(bad[0]) ? JSON.stringify(bad[0]) : `the character U+${(bad[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
    return `the part before the @ may hold only a-z, 0-9, dot, hyphen and underscore, not ${shown}`;
  }
  if (!/^[a-z0-9]/.test(local) || !/[a-z0-9]$/.test(local)) return "the part before the @ starts and ends with a letter or a digit";
  if (local.includes("..")) return "the part before the @ may not hold two dots in a row";
  if (SYSTEM_LOCAL_PARTS.has(local)) return `${local} is reserved for the mail system; choose another name`;
  if (use === "mailbox" && ROLE_LOCAL_PARTS.has(local)) return `${local} is a role address: add it as an alias that forwards to one of your mailboxes instead`;
  return undefined;
}
