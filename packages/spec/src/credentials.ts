import { createHash } from "node:crypto";
import type { ServiceSpec } from "./specs.ts";

/**
 * Customers' credentials (mail and XMPP password hashes) live in `secrets/` (mode 0600), never
 * in a spec: specs are a git history that the panel shows as diffs. A spec names an account's
 * secret in `credential`; the store moves any inline `passwordHash` it is given into a secret
 * before the spec is written (and migrates specs written before this rule, on open).
 *
 * A secret's name is `credential-<service>-<mail|xmpp>-<account>-<version>`: `<account>` is a
 * digest of the address or JID (addresses may hold characters a file name may not), `<version>`
 * a digest of the hash itself, so that a password change changes the spec (a commit, which
 * wakes the minion) without the spec telling anything about the password. Both digests are of
 * values that are already salted or public; neither helps anyone guess a password.
 */

/** The prefix of every credential secret. */
export const CREDENTIAL_SECRET_PREFIX = "credential-";

/** The two kinds of account that carry a credential. */
export type CredentialKind = "mail" | "xmpp";

function digest(text: string, length: number): string {
  return createHash("sha256").update(text, "utf8").digest("hex").slice(0, length);
}

/** The prefix of every secret of one account: `credential-<service>-<kind>-<account digest>-`. */
export function credentialAccountPrefix(serviceId: string, kind: CredentialKind, account: string): string {
  return `${CREDENTIAL_SECRET_PREFIX}${serviceId}-${kind}-${digest(account.toLowerCase(), 16)}-`;
}

/** The prefix of every credential secret of a service. */
export function credentialServicePrefix(serviceId: string): string {
  return `${CREDENTIAL_SECRET_PREFIX}${serviceId}-`;
}

/** The secret name of one account's hash. */
export function credentialSecretName(serviceId: string, kind: CredentialKind, account: string, hash: string): string {
  return `${credentialAccountPrefix(serviceId, kind, account)}${digest(hash, 12)}`;
}

/** One account of a service spec that carries a credential. */
export interface CredentialAccount {
  /** `mail` for a mailbox, `xmpp` for an XMPP user. */
  readonly kind: CredentialKind;
  /** The mailbox's address or the user's JID. */
  readonly account: string;
  /** Where it is in the spec, for messages (`mail.mailboxes[0]`). */
  readonly field: string;
  /** The inline hash, when the spec (still) holds one. */
  readonly passwordHash: string | undefined;
  /** The secret it names, when it names one. */
  readonly credential: string | undefined;
}

/** Every account of a service spec that carries a credential, in the spec's order. */
export function credentialAccounts(spec: ServiceSpec): CredentialAccount[] {
  return [
    ...(spec.mail?.mailboxes ?? []).map((box, i) => ({ kind: "mail" as const, account: box.address, field: `mail.mailboxes[${i}]`, passwordHash: box.passwordHash, credential: box.credential })),
    ...(spec.xmpp?.users ?? []).map((user, i) => ({ kind: "xmpp" as const, account: `${user.username}@${user.domain}`, field: `xmpp.users[${i}]`, passwordHash: user.passwordHash, credential: user.credential })),
  ];
}

/**
 * Replaces every account's credential through `choose`, which returns the secret name to
 * reference (the spec then holds no inline hash). Pure.
 */
export function rebindCredentials(spec: ServiceSpec, choose: (account: CredentialAccount) => string): ServiceSpec {
  const accounts = credentialAccounts(spec);
  let next = 0;
  const bind = <T extends { passwordHash?: string | undefined; credential?: string | undefined }>(entry: T): T => {
    const account = accounts[next++];
    if (account === undefined) return entry;
    const { passwordHash: _inline, credential: _old, ...rest } = entry;
    return { ...rest, credential: choose(account) } as T;
  };
  return {
    ...spec,
    ...(spec.mail === undefined ? {} : { mail: { ...spec.mail, mailboxes: spec.mail.mailboxes.map(bind) } }),
    ...(spec.xmpp === undefined ? {} : { xmpp: { ...spec.xmpp, users: spec.xmpp.users.map(bind) } }),
  };
}

/**
 * Moves a spec's inline hashes out: the spec with every inline `passwordHash` replaced by the
 * name of the secret that is to hold it, and those secrets' contents. Accounts that already name
 * a secret are kept as they are. Pure.
 */
export function extractCredentials(spec: ServiceSpec): { spec: ServiceSpec; secrets: Map<string, string> } {
  const secrets = new Map<string, string>();
  const out = rebindCredentials(spec, (account) => {
    if (account.passwordHash === undefined) return account.credential ?? "";
    const name = credentialSecretName(spec.id, account.kind, account.account, account.passwordHash);
    secrets.set(name, account.passwordHash);
    return name;
  });
  return { spec: out, secrets };
}

/** Whether any account of a service spec holds its hash inline. */
export function hasInlineCredentials(spec: ServiceSpec): boolean {
  return credentialAccounts(spec).some((account) => account.passwordHash !== undefined);
}

/** The stand-in hash of an account whose secret is missing: no daemon verifies it. */
export const MISSING_CREDENTIAL = "{MISSING-SECRET}";

/**
 * Reads the hashes of every secret a spec's accounts name, for a reader that renders daemon
 * configuration (an actuator's observe); {@link withCredentials} then puts them in the spec.
 * @param read reads a secret by name (the store's `readSecret`).
 * @returns the hashes by secret name, and the names of the secrets that are missing or empty.
 */
export async function readCredentials(spec: ServiceSpec, read: (name: string) => Promise<Uint8Array | undefined>): Promise<{ hashes: ReadonlyMap<string, string>; missing: string[] }> {
  const missing: string[] = [];
  const hashes = new Map<string, string>();
  for (const account of credentialAccounts(spec)) {
    const name = account.credential;
    if (name === undefined || hashes.has(name) || missing.includes(name)) continue;
    const bytes = await read(name);
    const hash = bytes === undefined ? "" : Buffer.from(bytes).toString("utf8").trim();
    if (hash === "") missing.push(name);
    else hashes.set(name, hash);
  }
  return { hashes, missing };
}

/**
 * The spec with each account's hash taken from `hashes` (never to be stored). An account whose
 * secret is missing gets {@link MISSING_CREDENTIAL}, which the renderers refuse and report like
 * any unusable hash, so that the account keeps what it had. Pure.
 */
export function withCredentials(spec: ServiceSpec, hashes: ReadonlyMap<string, string>): ServiceSpec {
  const fill = <T extends { passwordHash?: string | undefined; credential?: string | undefined }>(entry: T): T => {
    if (entry.credential === undefined) return entry;
    const { credential: _name, ...rest } = entry;
    return { ...rest, passwordHash: hashes.get(entry.credential) ?? MISSING_CREDENTIAL } as T;
  };
  return {
    ...spec,
    ...(spec.mail === undefined ? {} : { mail: { ...spec.mail, mailboxes: spec.mail.mailboxes.map(fill) } }),
    ...(spec.xmpp === undefined ? {} : { xmpp: { ...spec.xmpp, users: spec.xmpp.users.map(fill) } }),
  };
}
