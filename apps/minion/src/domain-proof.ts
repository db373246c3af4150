// The minion's side of domain ownership (packages/spec/src/domain-proof.ts): an actuator that looks
// for each customer domain's `_coyote-challenge` TXT record or its delegation to this box and
// records what it saw proven, and a gate around every other actuator so that they only ever see
// the domains that may be served. No zone, mailbox, route or certificate is made for a customer's
// domain before its proof is seen.
import { Resolver } from "node:dns/promises";
import { rm } from "node:fs/promises";
import { ActuatorError, type Actuator, type ActuatorContext, type ActuatorStore, type Target } from "@coyote/actuator";
import { queryDelegation } from "@coyote/actuator-dnsconf";
import {
  DomainProofs,
  challengeName,
  challengeValue,
  domainProofsPath,
  isProven,
  needsProof,
  servedSpec,
  type Condition,
  type ProvenDomain,
  type ServerSpec,
  type ServiceSpec,
} from "@coyote/spec";

/** The condition the proof actuator reports on customers' services. */
export const DOMAIN_VERIFIED = "DomainVerified";

/** How long one TXT lookup may take before it counts as unanswered. */
const LOOKUP_TIMEOUT_MS = 3000;
/** How long finding and asking a domain's parent zone may take in all. */
const DELEGATION_DEADLINE_MS = 8000;
/** How many zones up the walk for the parent zone goes. */
const MAX_ZONE_WALK = 8;
/** The most TXT values of one name that are looked at (and named in the status). */
const MAX_VALUES = 20;

/** What one look for a domain's proof found. */
export interface ProofCheck {
  readonly name: string;
  /** The token the TXT record must hold, when the spec has one. */
  readonly token: string | undefined;
  readonly found: boolean;
  /** How it was proven, when it was. */
  readonly method: "txt" | "ns" | undefined;
  /** What was seen, for the status: the values, "no such record", or why the lookup failed. */
  readonly seen: string;
}

/**
 * The proven domains of every service, as recorded in `domains/<id>.json`, cached in memory. One
 * book is shared by the proof actuator (which writes it) and the gates (which read it).
 */
export class DomainProofBook {
  readonly #records = new Map<string, ProvenDomain[]>();

  /**
   * The domains seen proven for a service. A missing file is none; a bad one counts as none too
   * (the proof is looked for again), never as proven.
   */
  async proven(store: ActuatorStore, id: string): Promise<ProvenDomain[]> {
    const cached = this.#records.get(id);
    if (cached) return cached;
    const record = await store.readJson(domainProofsPath(id), DomainProofs).catch(() => undefined);
    const proven = record?.id === id ? record.proven : [];
    this.#records.set(id, proven);
    return proven;
  }

  /** Records the proven domains of a service (an empty list removes the file). */
  async record(store: ActuatorStore, id: string, proven: ProvenDomain[]): Promise<void> {
    if (proven.length === 0) await rm(store.path(domainProofsPath(id)), { force: true });
    else await store.writeJson(domainProofsPath(id), DomainProofs, { schemaVersion: 1, id, proven });
    this.#records.set(id, proven);
  }

  /**
   * The target as the other actuators may serve it: a service's domains that need no proof or are
   * proven, and only what lies on them. Reads the record loaded by {@link DomainProofBook.proven}.
   */
  served(target: Target, server: ServerSpec): Target {
    const spec = target.spec;
    if (spec === undefined) return target;
    const proven = this.#records.get(target.id) ?? [];
    const names = new Set(spec.domains.filter((d) => !needsProof(d, spec, server) || isProven(d, proven)).map((d) => d.name));
    return { id: target.id, spec: servedSpec(spec, names) };
  }
}

/**
 * Looks up the TXT values of a name through the configured resolver (the system's when none is).
 * @returns the values, an empty list when the name or the record does not exist, or why the lookup failed.
 */
export async function lookupTxt(name: string, resolverAddress: string | undefined, timeoutMs = LOOKUP_TIMEOUT_MS): Promise<{ values: string[] } | { error: string }> {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
  if (resolverAddress !== undefined) resolver.setServers([resolverAddress]);
  // The resolver's own timeout covers one try; this one bounds the whole call whatever happens.
  const deadline = setTimeout(() => resolver.cancel(), timeoutMs + 500);
  try {
    const records = await resolver.resolveTxt(name);
    return { values: records.slice(0, MAX_VALUES).map((chunks) => chunks.join("")) };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ENODATA" || code === "ENOTFOUND") return { values: [] };
    return { error: typeof code === "string" ? code : String(error) };
  } finally {
    clearTimeout(deadline);
  }
}

/** What a check of a domain's TXT record found: whether it holds the token, and what was seen. */
async function checkTxt(name: string, token: string, resolverAddress: string | undefined): Promise<{ found: boolean; seen: string }> {
  const result = await lookupTxt(challengeName(name), resolverAddress);
  if ("error" in result) return { found: false, seen: `the lookup failed (${result.error})` };
  const found = result.values.includes(challengeValue(token));
  return { found, seen: result.values.length === 0 ? "no such record" : `found ${result.values.map((v) => JSON.stringify(v.slice(0, 120))).join(", ")}` };
}

/**
 * The name servers a domain is delegated to, as its parent zone's own servers say: the closest
 * enclosing zone's servers are found through the resolver, then one of them is asked without
 * recursion (a resolver would ask this box, which does not serve the zone yet).
 * @param name the domain.
 * @param resolverAddress the resolver (`host:port`), the system's when undefined.
 * @param port the port the parent's servers are asked on.
 * @param deadlineMs how long the whole walk may take.
 */
export async function delegationOf(name: string, resolverAddress: string | undefined, port: number, deadlineMs = DELEGATION_DEADLINE_MS): Promise<{ names: string[] } | { error: string }> {
  const resolver = new Resolver({ timeout: LOOKUP_TIMEOUT_MS, tries: 1 });
  if (resolverAddress !== undefined) resolver.setServers([resolverAddress]);
  // One deadline for the whole walk, whatever the resolver and the parent's servers do.
  const end = performance.now() + deadlineMs;
  const deadline = setTimeout(() => resolver.cancel(), deadlineMs);
  try {
    return await walkDelegation(resolver, name, port, end);
  } finally {
    clearTimeout(deadline);
  }
}

async function walkDelegation(resolver: Resolver, name: string, port: number, end: number): Promise<{ names: string[] } | { error: string }> {
  const labels = name.split(".");
  let servers: string[] = [];
  // The closest enclosing zone is rarely more than a few labels up; the walk stops there.
  for (let i = 1; i < Math.min(labels.length, MAX_ZONE_WALK + 1) && servers.length === 0; i++) {
    const zone = labels.slice(i).join(".");
    try {
      servers = (await resolver.resolveNs(zone)).slice(0, 4);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code !== "ENODATA" && code !== "ENOTFOUND") return { error: `finding the name servers of ${zone}: ${typeof code === "string" ? code : String(error)}` };
    }
  }
  if (servers.length === 0) return { error: `no zone above ${name} has name servers` };
  const addresses = (await Promise.all(servers.map((ns) => resolver.resolve4(ns).catch(() => [] as string[])))).flat().slice(0, 4);
  let last: { error: string } = { error: `no address for the name servers ${servers.join(", ")}` };
  for (const host of addresses) {
    const left = end - performance.now();
    if (left <= 0) return { error: "no answer before the deadline" };
    const answer = await queryDelegation({ host, port }, name, Math.min(LOOKUP_TIMEOUT_MS, left));
    if ("names" in answer) return answer;
    last = answer;
  }
  return last;
}

/** Looks for the proof of one domain: its TXT record (when the spec has a token) and its delegation. */
async function check(name: string, token: string | undefined, server: ServerSpec, port: number): Promise<ProofCheck> {
  const [txt, delegation] = await Promise.all([
    token === undefined ? undefined : checkTxt(name, token, server.dns.resolver),
    delegationOf(name, server.dns.resolver, port),
  ]);
  const delegated = "names" in delegation && delegation.names.includes(server.hostname);
  const ns = "error" in delegation ? `the lookup failed (${delegation.error})` : delegation.names.length === 0 ? "no delegation" : `delegated to ${delegation.names.join(", ")}`;
  const seen = txt === undefined ? `NS: ${ns}` : `TXT: ${txt.seen}; NS: ${ns}`;
  const method = txt?.found === true ? "txt" : delegated ? "ns" : undefined;
  return { name, token, found: method !== undefined, method, seen };
}

interface Observed {
  readonly proven: readonly ProvenDomain[];
  readonly checks: readonly ProofCheck[];
  /** When the checks were made (for the record). */
  readonly at: string;
}

interface Step {
  readonly proven: ProvenDomain[];
  /** Set when some domain is still unproven: the apply records what was proven, then reports this. */
  readonly unverified: string | undefined;
}

function describeMissing(check: ProofCheck | undefined, name: string, hostname: string): string {
  const delegate = `delegate it to the name server ${hostname}`;
  const seen = check === undefined ? "" : ` (last look: ${check.seen})`;
  if (check?.token === undefined) return `${name} is not proven yet: ${delegate}, or ask the admin to vouch for it${seen}`;
  return `${name} is not proven yet: set a TXT record ${challengeName(name)} with the value "${challengeValue(check.token)}", or ${delegate}${seen}`;
}

/** Options of {@link createDomainProofActuator}. */
export interface DomainProofOptions {
  /** The port authoritative servers are asked on for a delegation (53; tests use another). */
  readonly authoritativePort?: number;
}

/**
 * The actuator that looks for ownership proofs (`actuator.domains.proof`, condition
 * `DomainVerified`). It runs first; a domain still unproven makes it fail with `DomainUnverified`
 * and a message naming exactly what to set and what was seen, so the minion looks again on its
 * backoff schedule. A proof once seen is recorded and stays while the domain and its token stay
 * in the spec (the customer may then remove the record).
 */
export function createDomainProofActuator(book: DomainProofBook, options: DomainProofOptions = {}): Actuator<Observed, Step> {
  const port = options.authoritativePort ?? 53;
  return {
    id: "actuator.domains.proof",
    condition: DOMAIN_VERIFIED,
    appliesTo: (spec) => spec.owner !== undefined,
    async observe(target, context) {
      const at = new Date().toISOString();
      const proven = await book.proven(context.store, target.id);
      const spec = target.spec;
      if (spec === undefined) return { proven, checks: [], at };
      const pending = spec.domains.filter((d) => needsProof(d, spec, context.server) && !isProven(d, proven));
      const checks = await Promise.all(pending.map((d) => check(d.name, d.challenge, context.server, port)));
      return { proven, checks, at };
    },
    plan(target, observed, server) {
      const spec = target.spec;
      if (spec === undefined) return observed.proven.length === 0 ? { steps: [], describe: [] } : { steps: [{ proven: [], unverified: undefined }], describe: ["forget the proofs of a removed service"] };
      // Proofs of domains that left the spec, or whose token changed, are dropped.
      const kept = observed.proven.filter((p) => spec.domains.some((d) => d.name === p.name && isProven(d, [p])));
      const fresh = observed.checks.flatMap((c): ProvenDomain[] => (c.method === undefined ? [] : [{ name: c.name, method: c.method, ...(c.token === undefined ? {} : { token: c.token }), at: observed.at }]));
      const next = [...kept, ...fresh];
      const missing = spec.domains.filter((d) => needsProof(d, spec, server) && !isProven(d, next));
      const unverified = missing.length === 0 ? undefined : missing.map((d) => describeMissing(observed.checks.find((c) => c.name === d.name), d.name, server.hostname)).join("; ");
      const changed = next.length !== observed.proven.length || fresh.length > 0;
      if (changed) return { steps: [{ proven: next, unverified }], describe: fresh.map((p) => `${p.name} proven by its ${p.method === "txt" ? "TXT record" : "delegation"}`) };
      if (unverified !== undefined) throw new ActuatorError("DomainUnverified", unverified);
      return { steps: [], describe: [] };
    },
    async apply(plan, target, context: ActuatorContext) {
      for (const step of plan.steps) {
        await book.record(context.store, target.id, step.proven);
        if (step.unverified !== undefined) throw new ActuatorError("DomainUnverified", step.unverified);
      }
    },
  };
}

/**
 * Whether a service is not Ready only because a domain waits for its owner's proof: no fault of
 * the box, so no converge alarm. A service with no failing condition at all (its first reconcile
 * still under way) does not count.
 */
export function waitsOnlyForProof(conditions: readonly Pick<Condition, "type" | "status">[]): boolean {
  const notTrue = conditions.filter((c) => c.type !== "Ready" && c.status !== "True");
  return notTrue.length > 0 && notTrue.every((c) => c.type === DOMAIN_VERIFIED);
}

const gates = new WeakMap<Actuator, Actuator>();

/**
 * Wraps an actuator so that it sees a service's spec with only the domains that may be served
 * (the same wrapper for the same actuator, so that the minion's per-actuator bookkeeping holds).
 */
export function gateActuator(inner: Actuator, book: DomainProofBook): Actuator {
  const known = gates.get(inner);
  if (known) return known;
  const gated: Actuator = {
    id: inner.id,
    condition: inner.condition,
    ...(inner.appliesTo ? { appliesTo: (spec: ServiceSpec) => inner.appliesTo?.(spec) ?? true } : {}),
    async observe(target, context) {
      await book.proven(context.store, target.id);
      return inner.observe(book.served(target, context.server), context);
    },
    plan: (target, observed, server) => inner.plan(book.served(target, server), observed, server),
    apply: (plan, target, context) => inner.apply(plan, book.served(target, context.server), context),
    ...(inner.commit ? { commit: (context: ActuatorContext) => inner.commit?.(context) ?? Promise.resolve() } : {}),
    ...(inner.start ? { start: (context: ActuatorContext) => inner.start?.(context) ?? Promise.resolve({ stop: () => Promise.resolve() }) } : {}),
  };
  gates.set(inner, gated);
  return gated;
}

/** The proof actuator first, then every other actuator behind the gate. */
export function withDomainProof(actuators: readonly Actuator[], book: DomainProofBook, proof: Actuator): Actuator[] {
  return [proof, ...actuators.map((a) => gateActuator(a, book))];
}
