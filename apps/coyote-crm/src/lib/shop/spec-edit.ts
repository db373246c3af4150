// Changing a customer's service spec from the account pages: the spec is read, changed and written
// back through the state store, the one way the crm changes what the box serves (the minion then
// applies it). A credential goes in as an inline hash, which the store moves to `secrets/` exactly
// as for a signup; the store drops the secret an account no longer names.
import { credentialAccounts, scramCredentials, scramHashFor, type ScramHash, type ServiceSpec, type StateStore } from "@coyote/spec";

/** What of the state store the account pages use (a narrow view, so that tests can make a write fail). */
export type EditStore = Pick<StateStore, "applySpec" | "getSpec" | "readSecret">;

// Edits of this process run one at a time: each reads a spec, changes it and writes it back, and
// two of them interleaved would lose the first one's change.
let queue: Promise<unknown> = Promise.resolve();

/** Runs `task` once every earlier edit of this process has ended. */
export function oneEditAtATime<T>(task: () => Promise<T>): Promise<T> {
  const run = queue.then(task, task);
  queue = run.catch(() => undefined);
  return run;
}

/** A customer's service spec, or undefined when it is missing, unreadable or not a service. */
export async function readServiceSpec(store: Pick<StateStore, "getSpec">, serviceId: string): Promise<ServiceSpec | undefined> {
  const spec = await store.getSpec(serviceId).catch(() => undefined);
  return spec?.kind === "Service" ? spec : undefined;
}

/** The current hash of every account of a spec, by `kind:account` (`mail:a@b.org`, `xmpp:a@b.org`); a missing secret is left out. */
export async function currentHashes(store: Pick<StateStore, "readSecret">, spec: ServiceSpec): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const account of credentialAccounts(spec)) {
    const inline = account.passwordHash;
    const stored = account.credential === undefined ? undefined : (await store.readSecret(account.credential).catch(() => undefined))?.toString("utf8").trim();
    const hash = inline ?? stored;
    if (hash !== undefined && hash !== "") out.set(`${account.kind}:${account.account}`, hash);
  }
  return out;
}

/**
 * The SCRAM hash function a new credential of this service must use: the one its accounts share
 * (Prosody verifies one scheme per host, and the earlier passwords are not known), SHA-256 for a
 * service without accounts.
 * @throws TypeError when the service's accounts mix schemes (scramHashFor).
 */
export function schemeOf(hashes: ReadonlyMap<string, string>): ScramHash {
  return scramHashFor([...hashes.values()]);
}

/** A SCRAM credential of `password` in the service's scheme. */
export function credentialFor(scheme: ScramHash, password: string): string {
  return scramCredentials(scheme, password);
}

/**
 * The spec with the given accounts' credentials replaced by inline hashes (the store moves them to
 * `secrets/`). Accounts are named `mail:<address>` or `xmpp:<jid>`; others keep what they name. Pure.
 */
export function withHashes(spec: ServiceSpec, hashes: ReadonlyMap<string, string>): ServiceSpec {
  const set = <T extends { passwordHash?: string | undefined; credential?: string | undefined }>(entry: T, key: string): T => {
    const hash = hashes.get(key);
    if (hash === undefined) return entry;
    const { credential: _old, passwordHash: _inline, ...rest } = entry;
    return { ...rest, passwordHash: hash } as T;
  };
  return {
    ...spec,
    ...(spec.mail === undefined ? {} : { mail: { ...spec.mail, mailboxes: spec.mail.mailboxes.map((box) => set(box, `mail:${box.address}`)) } }),
    ...(spec.xmpp === undefined ? {} : { xmpp: { ...spec.xmpp, users: spec.xmpp.users.map((user) => set(user, `xmpp:${user.username}@${user.domain}`)) } }),
  };
}

/** A thrown value's message. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
