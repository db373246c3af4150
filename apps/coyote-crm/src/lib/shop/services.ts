// A customer's services as their pages and the /api/me routes show them: only their own, with
// the minion's conditions, a ready flag, the last day's usage and how to reach each part.
import { and, asc, eq } from "drizzle-orm";
import { ServiceStatus, type ServerSpec, type StateStore } from "@coyote/spec";
import type { CrmDb } from "../db.ts";
import { getPlan } from "../plans.ts";
import { serviceSeries } from "../sampler.ts";
import { customerServices } from "../schema.ts";
import type { ServiceLiveView, UsageView } from "./views.ts";

/** A customer's service as the crm indexes it. */
export type CustomerServiceRow = typeof customerServices.$inferSelect;

/** The view shapes, defined in views.ts so that the browser bundle can use them too. */
export type { ConditionView, ServiceLiveView, UsageView } from "./views.ts";

/** The usage window. */
export const USAGE_WINDOW_MS = 24 * 60 * 60 * 1000;

/** The services of one customer, oldest first. */
export function customerServiceRows(db: CrmDb, userId: string): CustomerServiceRow[] {
  return db.select().from(customerServices).where(eq(customerServices.userId, userId)).orderBy(asc(customerServices.createdAt), asc(customerServices.domain)).all();
}

/** One service of one customer, or undefined when there is none with that id or another customer owns it. */
export function ownedService(db: CrmDb, userId: string, serviceId: string): CustomerServiceRow | undefined {
  return db
    .select()
    .from(customerServices)
    .where(and(eq(customerServices.serviceId, serviceId), eq(customerServices.userId, userId)))
    .get();
}

/**
 * Whether a status says the service is ready: its `Ready` condition is True for the spec's
 * current generation. A Ready from an older generation describes a spec that has since changed,
 * so it does not count until the minion has caught up.
 * @param status the minion's status file, if any.
 * @param generation the spec's current generation, when known.
 */
export function isReady(status: ServiceStatus | undefined, generation: number | undefined): boolean {
  const ready = status?.conditions.find((c) => c.type === "Ready");
  if (ready?.status !== "True") return false;
  return generation === undefined || ready.observedGeneration >= generation;
}

/** The last day's usage of a service from the sampled stats: sums of the intervals, the last memory reading. */
export function usageOf(db: CrmDb, serviceId: string, now = Date.now()): UsageView {
  const points = serviceSeries(db, serviceId, now - USAGE_WINDOW_MS);
  let requests = 0;
  let bytesOut = 0;
  for (const p of points) {
    requests += p.requests;
    bytesOut += p.bytesOut;
  }
  const memoryBytes = points.findLast((p) => p.memoryBytes !== null)?.memoryBytes ?? null;
  return { windowHours: USAGE_WINDOW_MS / 3_600_000, requests, bytesOut, memoryBytes };
}

/** What of the state store the views read. */
export type ServiceViewStore = Pick<StateStore, "getSpec" | "readJson">;

/**
 * A customer's service as it stands: the status the minion wrote, whether that is Ready for the
 * current spec, and the usage.
 * @param db the crm database.
 * @param store the state store (spec generation and status).
 * @param row the service's row (already checked to be the customer's).
 * @param now the clock, for tests.
 */
export async function serviceLive(db: CrmDb, store: ServiceViewStore, row: CustomerServiceRow, now = Date.now()): Promise<ServiceLiveView> {
  // A missing, torn or bad spec or status reads as "not known yet": the page keeps polling.
  const [spec, status] = await Promise.all([
    store.getSpec(row.serviceId).catch(() => undefined),
    store.readJson(`status/${row.serviceId}.json`, ServiceStatus).catch(() => undefined),
  ]);
  const generation = spec?.kind === "Service" ? spec.generation : undefined;
  const conditions = (status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message, lastTransitionTime: c.lastTransitionTime }));
  return {
    id: row.serviceId,
    domain: row.domain,
    plan: { id: row.planId, name: getPlan(db, row.planId)?.name ?? row.planId },
    ready: isReady(status, generation),
    conditions,
    usage: usageOf(db, row.serviceId, now),
  };
}

/** How the customer reaches the parts of a service. */
export interface CredentialsView {
  /** The website's address, when the service has a website. */
  readonly websiteUrl: string | undefined;
  /** The mailbox, when it has one: address and the IMAP/SMTP server. */
  readonly mail: { readonly address: string; readonly server: string } | undefined;
  /** The XMPP account, when it has one: address, server and client port. */
  readonly xmpp: { readonly address: string; readonly server: string; readonly port: number } | undefined;
}

/**
 * The credentials part of a service page. The passwords are the one the customer signed up with
 * and are never shown (they are not stored in clear anywhere).
 * @param row the service's row.
 * @param hasWebsite whether the service's spec has a web part.
 * @param server the server spec (hostname, HTTPS port, XMPP client port).
 */
export function credentialsOf(row: CustomerServiceRow, hasWebsite: boolean, server: Pick<ServerSpec, "hostname" | "ports" | "xmpp">): CredentialsView {
  const port = server.ports.https === 443 ? "" : `:${server.ports.https}`;
  return {
    websiteUrl: hasWebsite ? `https://${row.domain}${port}/` : undefined,
    mail: row.mailAddress === null ? undefined : { address: row.mailAddress, server: server.hostname },
    xmpp: row.xmppAddress === null ? undefined : { address: row.xmppAddress, server: server.hostname, port: server.xmpp.clientPort },
  };
}
