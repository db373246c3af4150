// The shapes the /api/me routes answer and the polling components read. This module imports
// nothing from Node, so the browser bundle can check the answers with it.

/** One condition as the customer sees it. */
export interface ConditionView {
  readonly type: string;
  readonly status: "True" | "False" | "Unknown";
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
}

/** Traffic and memory of a service over the last day. */
export interface UsageView {
  /** The window the sums cover, in hours. */
  readonly windowHours: number;
  readonly requests: number;
  readonly bytesOut: number;
  /** The memory its backend used at the last sample, when it has a running one. */
  readonly memoryBytes: number | null;
}

/** A service's live state: what `/api/me/services/[id]` answers and the service page polls. */
export interface ServiceLiveView {
  readonly id: string;
  readonly domain: string;
  readonly plan: { readonly id: string; readonly name: string };
  /** Whether the minion reports the service's current spec Ready. */
  readonly ready: boolean;
  /** The minion's conditions (empty until it has looked at the service). */
  readonly conditions: readonly ConditionView[];
  readonly usage: UsageView;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isCondition(value: unknown): value is ConditionView {
  return (
    isRecord(value) &&
    typeof value.type === "string" &&
    (value.status === "True" || value.status === "False" || value.status === "Unknown") &&
    typeof value.reason === "string" &&
    typeof value.message === "string" &&
    typeof value.lastTransitionTime === "string"
  );
}

function isUsage(value: unknown): value is UsageView {
  return (
    isRecord(value) &&
    typeof value.windowHours === "number" &&
    typeof value.requests === "number" &&
    typeof value.bytesOut === "number" &&
    (value.memoryBytes === null || typeof value.memoryBytes === "number")
  );
}

/** The service of an `/api/me/services/[id]` answer, or undefined when the answer is not one. */
export function parseServiceLive(value: unknown): ServiceLiveView | undefined {
  if (!isRecord(value) || typeof value.id !== "string" || typeof value.domain !== "string" || typeof value.ready !== "boolean") return undefined;
  const plan = value.plan;
  if (!isRecord(plan) || typeof plan.id !== "string" || typeof plan.name !== "string") return undefined;
  if (!Array.isArray(value.conditions) || !value.conditions.every(isCondition) || !isUsage(value.usage)) return undefined;
  return { id: value.id, domain: value.domain, plan: { id: plan.id, name: plan.name }, ready: value.ready, conditions: value.conditions, usage: value.usage };
}

/** The services of an `/api/me/services` answer, or undefined when the answer is not one. */
export function parseServiceList(value: unknown): ServiceLiveView[] | undefined {
  if (!isRecord(value) || !Array.isArray(value.services)) return undefined;
  const out: ServiceLiveView[] = [];
  for (const item of value.services) {
    const service = parseServiceLive(item);
    if (service === undefined) return undefined;
    out.push(service);
  }
  return out;
}

/** The wait between polls while a service is being set up, ms. */
export const SERVICE_SETUP_POLL_MS = 400;
/** For how long a page polls that often: a setup that takes longer waits for something slower (DNS, a CA). */
export const SERVICE_SETUP_WATCH_MS = 60_000;
/** The wait between polls once every service shown is ready, or after the first minute, ms. */
export const SERVICE_READY_POLL_MS = 5000;

/**
 * How long a customer's page waits before asking for its services' state again: briefly while one
 * is being set up, in the page's first minute (a signup is served in well under a second, and the
 * customer is watching), and longer once every one is ready or the setup waits on something slow
 * (then only usage and a rare change are left to show, and an open tab costs the box little).
 * @param pollingMs how long the page has been polling.
 */
export function servicePollMs(live: ServiceLiveView | readonly ServiceLiveView[], pollingMs = 0): number {
  const all: readonly ServiceLiveView[] = Array.isArray(live) ? live : [live as ServiceLiveView];
  return all.every((one) => one.ready) || pollingMs >= SERVICE_SETUP_WATCH_MS ? SERVICE_READY_POLL_MS : SERVICE_SETUP_POLL_MS;
}

