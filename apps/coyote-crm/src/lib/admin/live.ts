// What the admin's live views show of a service, and the JSON the admin API answers with. This
// module is imported by client components too, so it depends on zod and types only (never on the
// state store, which needs Node).
import { z } from "zod";
import type { ServiceSpec, ServiceStatus } from "@coyote/spec";

/** One condition as the panel shows it. */
export const LiveCondition = z.object({
  type: z.string(),
  status: z.enum(["True", "False", "Unknown"]),
  reason: z.string(),
  message: z.string(),
  lastTransitionTime: z.string(),
});
/** One condition as the panel shows it. */
export type LiveCondition = z.infer<typeof LiveCondition>;

/** Whether a service is ready: the `Ready` condition, or "pending" before the minion reported it. */
export const Readiness = z.object({
  state: z.enum(["ready", "not-ready", "pending"]),
  /** The badge's text: "Ready", "Not ready" or "Pending". */
  label: z.string(),
  reason: z.string().optional(),
  message: z.string().optional(),
});
/** Whether a service is ready. */
export type Readiness = z.infer<typeof Readiness>;

/** A valid service in the admin's list. */
export const ServiceRow = z.object({
  id: z.string(),
  domains: z.array(z.string()),
  owner: z.string().optional(),
  plan: z.string().optional(),
  ready: Readiness,
  conditions: z.array(LiveCondition),
});
/** A valid service in the admin's list. */
export type ServiceRow = z.infer<typeof ServiceRow>;

/** A service spec file that does not validate, with the reason. */
export const InvalidServiceRow = z.object({ id: z.string(), error: z.string() });
/** A service spec file that does not validate. */
export type InvalidServiceRow = z.infer<typeof InvalidServiceRow>;

/** The answer of `GET /api/admin/services`. */
export const ServicesPayload = z.object({
  services: z.array(ServiceRow),
  invalid: z.array(InvalidServiceRow),
});
/** The answer of `GET /api/admin/services`. */
export type ServicesPayload = z.infer<typeof ServicesPayload>;

/** One point of a service's charts (see serviceSeries in lib/sampler.ts). */
export const LivePoint = z.object({
  at: z.number(),
  requests: z.number(),
  bytesOut: z.number(),
  errors: z.number(),
  memoryBytes: z.number().nullable(),
});
/** One point of a service's charts. */
export type LivePoint = z.infer<typeof LivePoint>;

/** The answer of `GET /api/admin/services/<id>`. */
export const ServiceDetailPayload = z.object({
  id: z.string(),
  ready: Readiness,
  /** The spec's generation, and the one the minion last acted on (undefined before it did). */
  generation: z.number(),
  observedGeneration: z.number().optional(),
  conditions: z.array(LiveCondition),
  /** The chart window: points lie between `from` and `to` (epoch ms). */
  from: z.number(),
  to: z.number(),
  points: z.array(LivePoint),
});
/** The answer of `GET /api/admin/services/<id>`. */
export type ServiceDetailPayload = z.infer<typeof ServiceDetailPayload>;

/** How far back the service charts reach. */
export const CHART_WINDOW_MS = 60 * 60 * 1000;

/** How often the live views ask again. */
export const POLL_INTERVAL_MS = 2000;

/**
 * A service's readiness from its status: the `Ready` condition decides; without a status file or
 * without that condition the minion has not said yet, which is "Pending", not "Not ready".
 */
export function readiness(status: ServiceStatus | undefined): Readiness {
  const ready = status?.conditions.find((c) => c.type === "Ready");
  if (status === undefined || ready === undefined) {
    return { state: "pending", label: "Pending", message: status === undefined ? "the minion has not reported on this service yet" : "the minion has not reported a Ready condition yet" };
  }
  if (ready.status === "True") return { state: "ready", label: "Ready", reason: ready.reason, message: ready.message };
  return { state: "not-ready", label: "Not ready", reason: ready.reason, message: ready.message };
}

/** The conditions as the panel shows them (without the generation bookkeeping). */
export function liveConditions(status: ServiceStatus | undefined): LiveCondition[] {
  return (status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message, lastTransitionTime: c.lastTransitionTime }));
}

/** A service's row in the admin's list. */
export function serviceRow(spec: ServiceSpec, status: ServiceStatus | undefined): ServiceRow {
  const row: ServiceRow = { id: spec.id, domains: spec.domains.map((d) => d.name), ready: readiness(status), conditions: liveConditions(status) };
  if (spec.owner !== undefined) row.owner = spec.owner.email;
  if (spec.plan !== undefined) row.plan = spec.plan;
  return row;
}

/** What `GET /api/admin/services/<id>` answers, from the spec, its status and its chart points. */
export function serviceDetail(spec: ServiceSpec, status: ServiceStatus | undefined, points: readonly LivePoint[], now: number): ServiceDetailPayload {
  const payload: ServiceDetailPayload = {
    id: spec.id,
    ready: readiness(status),
    generation: spec.generation ?? 0,
    conditions: liveConditions(status),
    from: now - CHART_WINDOW_MS,
    to: now,
    points: [...points],
  };
  if (status !== undefined) payload.observedGeneration = status.observedGeneration;
  return payload;
}
