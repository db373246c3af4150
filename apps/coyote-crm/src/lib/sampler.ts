import { and, asc, eq, gte, lt } from "drizzle-orm";
import type { ComponentStats, ServiceSpec, StateStore } from "@coyote/spec";
import type { CrmDb } from "./db.ts";
import { statSamples } from "./schema.ts";
import { readServices, readStats } from "./state.ts";

/** How long samples are kept. */
export const SAMPLE_RETENTION_MS = 24 * 60 * 60 * 1000;

/** Whether a proxy host (a name, or `*.x`) belongs to a service's web hostnames. */
function hostOf(spec: ServiceSpec, host: string): boolean {
  return spec.web?.hostnames.includes(host) ?? false;
}

/** One service's counters in one moment: the sums over its hostnames, and its unit's memory. */
export interface ServiceCounters {
  readonly requests: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly errors: number;
  readonly memoryBytes: number | undefined;
}

/** Adds up the proxy's per-host counters and the activator's unit memory per service. */
export function countersByService(services: readonly ServiceSpec[], proxy: ComponentStats | undefined, activator: ComponentStats | undefined): Map<string, ServiceCounters> {
  const out = new Map<string, ServiceCounters>();
  for (const spec of services) {
    let requests = 0;
    let bytesIn = 0;
    let bytesOut = 0;
    let errors = 0;
    for (const [host, stats] of Object.entries(proxy?.hosts ?? {})) {
      if (!hostOf(spec, host)) continue;
      requests += stats.requests;
      bytesIn += stats.bytesIn;
      bytesOut += stats.bytesOut;
      errors += stats.status["5xx"];
    }
    out.set(spec.id, { requests, bytesIn, bytesOut, errors, memoryBytes: activator?.units?.[spec.id]?.memoryBytes });
  }
  return out;
}

/**
 * Writes one sample per service from the daemons' stats files, and drops samples past retention.
 * Does nothing while snitch-proxy has no readable stats. A service sampled for the first time (after
 * the panel's own first sampling) also gets a sample of zeros just before: the proxy counts a host
 * only once it has a route, so the new service's counters started from nothing, and its first
 * requests (a customer who opens their site right after signing up) are an interval like any other.
 */
export async function sampleStats(db: CrmDb, store: StateStore, now = Date.now()): Promise<void> {
  const [services, proxy, activator] = await Promise.all([readServices(store), readStats(store, "snitch-proxy"), readStats(store, "docker-activator")]);
  // Without the proxy's counters a sample of zeros would read as a restart and the next one as a
  // burst of every request since it started: better a gap in the chart.
  if (proxy === undefined) return;
  const counters = countersByService(services, proxy, activator);
  db.transaction((tx) => {
    // Whether the panel has sampled before: services that were there before its first sampling
    // have counters of unknown age, and get no zeros. Both lookups use the table's key, not a scan.
    const sampledBefore = tx.select({ at: statSamples.at }).from(statSamples).limit(1).get() !== undefined;
    for (const [serviceId, c] of counters) {
      if (sampledBefore && tx.select({ at: statSamples.at }).from(statSamples).where(eq(statSamples.serviceId, serviceId)).limit(1).get() === undefined) {
        tx.insert(statSamples).values({ at: now - 1, serviceId, requests: 0, bytesIn: 0, bytesOut: 0, errors: 0, memoryBytes: null }).onConflictDoNothing().run();
      }
      tx.insert(statSamples).values({ at: now, serviceId, ...c, memoryBytes: c.memoryBytes ?? null }).onConflictDoNothing().run();
    }
    tx.delete(statSamples).where(lt(statSamples.at, now - SAMPLE_RETENTION_MS)).run();
  });
}

/** One point of a chart: the traffic in the interval that ends at `at`, and the memory at `at`. */
export interface ChartPoint {
  readonly at: number;
  readonly requests: number;
  readonly bytesOut: number;
  readonly errors: number;
  readonly memoryBytes: number | null;
}

/**
 * A service's history as chart points. The samples hold cumulative counters (since the proxy
 * started); a point is the difference to the sample before it, and a counter that went down (the
 * proxy restarted) counts from zero.
 */
export function serviceSeries(db: CrmDb, serviceId: string, sinceMs: number): ChartPoint[] {
  const rows = db.select().from(statSamples).where(and(eq(statSamples.serviceId, serviceId), gte(statSamples.at, sinceMs))).orderBy(asc(statSamples.at)).all();
  const points: ChartPoint[] = [];
  for (let i = 1; i < rows.length; i++) {
    const a = rows[i - 1];
    const b = rows[i];
    if (a === undefined || b === undefined) continue;
    const delta = (x: number, y: number) => (y >= x ? y - x : y);
    points.push({ at: b.at, requests: delta(a.requests, b.requests), bytesOut: delta(a.bytesOut, b.bytesOut), errors: delta(a.errors, b.errors), memoryBytes: b.memoryBytes });
  }
  return points;
}
