import { isAbsolute, relative, resolve, sep } from "node:path";
import { credentialAccountPrefix, credentialAccounts, credentialServicePrefix, extractCredentials, rebindCredentials } from "./credentials.ts";
import { ContractError } from "./errors.ts";
import { SITES_DIR } from "./sites.ts";
import type { ServiceSpec } from "./specs.ts";

/**
 * What the state store does with the credentials of the specs it writes (credentials.ts): moves
 * inline hashes to `secrets/`, drops the secrets no spec names any more (so that a removed
 * account's hash is gone, and a rollback cannot bring it back), and points a rolled-back spec at
 * each account's current secret.
 */

/** The store's `secrets/` folder, as the functions here need it. */
export interface SecretFolder {
  /** Writes a secret (mode 0600, atomically). */
  write(name: string, data: string): Promise<void>;
  /** Reads a secret, or undefined when there is none. */
  read(name: string): Promise<Uint8Array | undefined>;
  /** The names of every secret. */
  list(): Promise<string[]>;
  /** Removes a secret (no error when it is not there). */
  remove(name: string): Promise<void>;
}

/**
 * Moves a service spec's inline hashes into secrets, written before the spec that names them.
 * @returns the spec without inline hashes.
 */
export async function storeInlineCredentials(spec: ServiceSpec, secrets: SecretFolder): Promise<ServiceSpec> {
  const { spec: out, secrets: contents } = extractCredentials(spec);
  for (const [name, hash] of contents) await secrets.write(name, hash);
  return out;
}

/**
 * Removes every credential secret of a service that its spec does not name (all of them when the
 * service is gone).
 */
export async function pruneCredentials(serviceId: string, spec: ServiceSpec | undefined, secrets: SecretFolder): Promise<string[]> {
  const named = new Set(spec === undefined ? [] : credentialAccounts(spec).flatMap((a) => (a.credential === undefined ? [] : [a.credential])));
  const prefix = credentialServicePrefix(serviceId);
  const removed: string[] = [];
  for (const name of await secrets.list()) {
    // A longer service id can share the prefix (`blog-` and `blog-2-`): match the whole shape.
    if (!name.startsWith(prefix) || !/^(mail|xmpp)-[0-9a-f]{16}-[0-9a-f]{12}$/.test(name.slice(prefix.length)) || named.has(name)) continue;
    await secrets.remove(name);
    removed.push(name);
  }
  return removed;
}

/**
 * Points every account of a spec restored from the history at the account's current secret:
 * an inline hash of an old revision, or a secret that was replaced since, is never brought back.
 * @param file the revision's file, named in the error.
 * @throws ContractError SPEC_ERR_INVALID naming each account that has no credential any more
 *   (removed since the revision): it cannot be restored without one; set a new password instead.
 */
export async function rebindToCurrentCredentials(spec: ServiceSpec, secrets: SecretFolder, file: string): Promise<ServiceSpec> {
  const names = await secrets.list();
  const issues: { field: string; message: string }[] = [];
  const rebound = rebindCredentials(spec, (account) => {
    const prefix = credentialAccountPrefix(spec.id, account.kind, account.account);
    if (account.credential !== undefined && names.includes(account.credential)) return account.credential;
    const current = names.filter((name) => name.startsWith(prefix)).sort()[0];
    if (current === undefined) {
      issues.push({ field: `${account.field}.credential`, message: `${account.account} has no credential any more (it was removed after this revision); a removed password is never restored, so set a new one after the rollback or roll back to a later revision` });
      return "";
    }
    return current;
  });
  if (issues.length > 0) throw new ContractError("SPEC_ERR_INVALID", file, issues);
  return rebound;
}

/**
 * Rewrites the fields of a spec document written before today's schema, before it is validated:
 * an absolute static root inside the service's site folder becomes relative to it, and any other
 * absolute root becomes the site folder itself (it could publish anything: `/`, `secrets/`).
 * @returns the document (a copy when changed) and what changed, for the commit message.
 */
export function migrateLegacyFields(value: unknown, stateRoot: string): { value: unknown; changes: string[] } {
  if (typeof value !== "object" || value === null) return { value, changes: [] };
  const doc = value as { kind?: unknown; id?: unknown; web?: { backend?: { kind?: unknown; root?: unknown } } };
  const backend = doc.web?.backend;
  if (doc.kind !== "Service" || typeof doc.id !== "string" || backend?.kind !== "static" || typeof backend.root !== "string" || !isAbsolute(backend.root)) {
    return { value, changes: [] };
  }
  const site = resolve(stateRoot, SITES_DIR, doc.id);
  const full = resolve(backend.root);
  const inside = full === site || full.startsWith(`${site}${sep}`);
  const root = inside && full !== site ? relative(site, full) : ".";
  const copy = structuredClone(value) as { web: { backend: { root: string } } };
  copy.web.backend.root = root;
  return { value: copy, changes: [`web.backend.root ${inside ? "made relative to" : "confined to"} ${SITES_DIR}/${doc.id}`] };
}
