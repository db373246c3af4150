import { z } from "zod";
import { ActuatorError } from "@coyote/actuator";
import { DomainName, Email, MISSING_CREDENTIAL, SchemaVersion, ServiceId } from "@coyote/spec";
import type { ServiceSpec } from "@coyote/spec";
import { normalizePasswordHash } from "./password.ts";

// Lowercase, as Postfix folds lookup keys and Dovecot's default `auth_username_format` is `%Lu`:
// a key with an upper-case letter would never be found.
const LOCAL_PART = /^(?!\.)(?!.*\.\.)[a-z0-9_'+.-]{1,64}(?<![.'])$/;

/** A hosted address as the maps hold it: lowercase `localpart@domain`. */
export const MailAddress = z.string().refine((value) => {
  const at = value.lastIndexOf("@");
  return at > 0 && LOCAL_PART.test(value.slice(0, at)) && DomainName.safeParse(value.slice(at + 1)).success;
}, { error: (issue) => `not a lowercase hosted address: ${JSON.stringify(issue.input)}` });

/** A mailbox in a fragment: its password hash already carries Dovecot's `{SCHEME}` prefix. */
export const FragmentMailbox = z.strictObject({
  address: MailAddress,
  // Printable ASCII without colon: one field of one passwd-file line.
  passwordHash: z.string().max(1024).regex(/^\{[A-Z0-9.-]+\}[\x21-\x39\x3b-\x7e]+$/, { error: "not a {SCHEME}hash of printable ASCII without colons or whitespace" }),
  quotaMb: z.int().min(1).max(1048576).optional(),
});
/** A mailbox in a fragment. */
export type FragmentMailbox = z.infer<typeof FragmentMailbox>;

/**
 * What one service contributes to the combined Postfix maps and Dovecot users file:
 * `<stateDir>/mail/services/<id>.json`. The actuator writes it in `apply`; `commit` rebuilds the
 * combined files from all of them. It holds password hashes, so it is mode 0600.
 */
export const MailFragment = z.strictObject({
  schemaVersion: SchemaVersion,
  id: ServiceId,
  /** Every domain of the service: each is a virtual mailbox domain with its own DKIM key. */
  domains: z.array(DomainName),
  mailboxes: z.array(FragmentMailbox),
  aliases: z.array(z.strictObject({ address: MailAddress, to: z.array(Email).min(1) })),
  /** Where mail for any other address of the service's domains goes. */
  catchAll: Email.optional(),
});
/** One service's part of the mail configuration. */
export type MailFragment = z.infer<typeof MailFragment>;

/** A mailbox left out of a fragment because Dovecot could not verify its password hash. */
export interface RejectedMailbox {
  /** The address, lowercase. */
  readonly address: string;
  /** Why, without the hash. */
  readonly why: string;
  /** Whether the mailbox stays as it was (its earlier, valid hash is kept) rather than not existing. */
  readonly keptPrevious: boolean;
}

/** The text a fragment is stored as: stable, so that comparing texts tells whether it changed. */
export function fragmentText(fragment: MailFragment): string {
  return `${JSON.stringify(fragment, null, 2)}\n`;
}

function byAddress(a: { address: string }, b: { address: string }): number {
  return a.address < b.address ? -1 : a.address > b.address ? 1 : 0;
}

/**
 * Builds a service's fragment from its spec. Pure. Addresses are lowercased and sorted, hashes get
 * their `{SCHEME}` prefix. A mailbox whose hash Dovecot cannot verify is left out, or, when the
 * previous fragment had it with a valid hash, kept as it was: a bad edit must not take a working
 * mailbox away (its mail would then bounce). The caller reports the rejected ones.
 * @param id the service id.
 * @param spec the service spec; its `mail` section must be present.
 * @param previous the fragment on disk, if any.
 * @param schemes the schemes Dovecot verifies.
 * @throws ActuatorError `DuplicateAddress` (terminal) when two entries differ only in letter case.
 */
export function buildFragment(
  id: string,
  spec: ServiceSpec,
  previous: MailFragment | undefined,
  schemes: ReadonlySet<string>,
): { fragment: MailFragment; rejected: RejectedMailbox[] } {
  const mail = spec.mail ?? { mailboxes: [], aliases: [], catchAll: undefined };
  const seen = new Set<string>();
  const claim = (address: string): string => {
    const lower = address.toLowerCase();
    if (seen.has(lower)) {
      throw new ActuatorError("DuplicateAddress", `planning mail for service ${id}: ${lower} is listed twice (addresses are compared in lower case)`, { terminal: true });
    }
    if (!MailAddress.safeParse(lower).success) {
      throw new ActuatorError("InvalidAddress", `planning mail for service ${id}: ${lower} cannot be a mailbox (local parts are a-z, 0-9 and _'+.-)`, { terminal: true });
    }
    seen.add(lower);
    return lower;
  };
  const mailboxes: FragmentMailbox[] = [];
  const rejected: RejectedMailbox[] = [];
  for (const box of mail.mailboxes) {
    const address = claim(box.address);
    // The spec reaching here has its hashes read from secrets/ (resolveCredentials).
    const normalized = normalizePasswordHash(box.passwordHash ?? MISSING_CREDENTIAL, schemes);
    if (normalized.ok) {
      mailboxes.push({ address, passwordHash: normalized.hash, ...(box.quotaMb === undefined ? {} : { quotaMb: box.quotaMb }) });
      continue;
    }
    const before = previous?.mailboxes.find((m) => m.address === address);
    if (before !== undefined) mailboxes.push(before);
    rejected.push({ address, why: normalized.why, keptPrevious: before !== undefined });
  }
  const aliases = mail.aliases.map((alias) => ({ address: claim(alias.address), to: [...alias.to] }));
  const fragment: MailFragment = {
    schemaVersion: 1,
    id,
    domains: spec.domains.map((d) => d.name).sort(),
    mailboxes: mailboxes.sort(byAddress),
    aliases: aliases.sort(byAddress),
    ...(mail.catchAll === undefined ? {} : { catchAll: mail.catchAll }),
  };
  return { fragment, rejected };
}
