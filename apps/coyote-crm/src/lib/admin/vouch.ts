// An admin's word that a customer's domain is theirs: recorded in the service's spec (who and when,
// so the history shows it) and in the crm's audit log. The minion then serves the domain without
// waiting for its TXT proof.
import type { StateStore } from "@coyote/spec";
import { audit } from "../audit.ts";
import type { CrmDb } from "../db.ts";
import { authorOf } from "../state.ts";

/** What a vouch did: done, or why not. */
export type VouchResult = { readonly ok: true } | { readonly ok: false; readonly message: string };

/**
 * Vouches for one domain of a service.
 * @param deps the database (audit log) and the state store.
 * @param admin the admin's e-mail address, recorded as who vouched.
 * @param serviceId the service.
 * @param domain the domain, one of the service's.
 * @param now the clock, for tests.
 */
export async function vouchForDomain(deps: { db: CrmDb; store: Pick<StateStore, "getSpec" | "applySpec"> }, admin: string, serviceId: string, domain: string, now = new Date()): Promise<VouchResult> {
  const spec = await deps.store.getSpec(serviceId).catch(() => undefined);
  if (spec?.kind !== "Service") return { ok: false, message: `vouching for ${domain}: there is no valid service ${serviceId}` };
  const index = spec.domains.findIndex((d) => d.name === domain);
  const target = spec.domains[index];
  if (target === undefined) return { ok: false, message: `vouching for ${domain}: it is not a domain of ${serviceId}` };
  if (target.vouched !== undefined) return { ok: false, message: `${domain} was already vouched for by ${target.vouched.by}` };
  const vouched = { by: admin, at: now.toISOString() };
  const domains = spec.domains.map((d, i) => (i === index ? { ...d, vouched } : d));
  try {
    await deps.store.applySpec({ ...spec, domains }, { author: authorOf(admin), message: `vouch for ${domain} (${serviceId})` });
  } catch (error) {
    return { ok: false, message: `vouching for ${domain}: ${error instanceof Error ? error.message : String(error)}` };
  }
  audit(deps.db, admin, "domain.vouch", serviceId, { domain });
  return { ok: true };
}
