import type { ComponentStats, UnitActivity } from "@coyote/spec";

/** Upper bounds of the latency buckets, in milliseconds; the last bucket is open. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000] as const;

type HostStats = NonNullable<ComponentStats["hosts"]>[string];

class HostCounter {
  requests = 0;
  bytesIn = 0;
  bytesOut = 0;
  readonly status = [0, 0, 0, 0, 0];
  readonly latency = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  openConnections = 0;

  snapshot(): HostStats {
    const [s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0] = this.status;
    return {
      requests: this.requests,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      status: { "1xx": s1, "2xx": s2, "3xx": s3, "4xx": s4, "5xx": s5 },
      latencyBucketsMs: [...LATENCY_BUCKETS_MS],
      latencyCounts: [...this.latency],
      openConnections: this.openConnections,
    };
  }
}

class UnitCounter {
  requests = 0;
  bytesIn = 0;
  bytesOut = 0;
  openConnections = 0;
  /** Whether anything happened since the last report (a report with only zeros is not sent). */
  dirty = false;
}

/**
 * The proxy's traffic counters: per host (cumulative, for `stats/snitch-proxy.json`) and per
 * activator unit (deltas, for the activity reports that keep a unit awake). Hosts are counted only
 * when they have a route, so random Host headers cannot grow the table.
 */
export class TrafficStats {
  readonly #hosts = new Map<string, HostCounter>();
  readonly #units = new Map<string, UnitCounter>();
  readonly counters = {
    connections: 0,
    connectionsRefused: 0,
    tlsErrors: 0,
    badRequests: 0,
    wakes: 0,
    wakeFailures: 0,
    upstreamErrors: 0,
    upstreamTimeouts: 0,
  };

  /** The counter of a routed host. */
  host(name: string): HostCounter {
    let counter = this.#hosts.get(name);
    if (!counter) {
      counter = new HostCounter();
      this.#hosts.set(name, counter);
    }
    return counter;
  }

  /** Counts one finished request of a routed host. */
  request(host: string, status: number, ms: number, bytesIn: number, bytesOut: number): void {
    const counter = this.host(host);
    counter.requests++;
    counter.bytesIn += bytesIn;
    counter.bytesOut += bytesOut;
    const cls = Math.floor(status / 100) - 1;
    if (cls >= 0 && cls < 5) counter.status[cls] = (counter.status[cls] ?? 0) + 1;
    let bucket = 0;
    while (bucket < LATENCY_BUCKETS_MS.length && ms > (LATENCY_BUCKETS_MS[bucket] ?? Infinity)) bucket++;
    counter.latency[bucket] = (counter.latency[bucket] ?? 0) + 1;
  }

  /** The counter of a unit, for its activity. */
  unit(id: string): UnitCounter {
    let counter = this.#units.get(id);
    if (!counter) {
      counter = new UnitCounter();
      this.#units.set(id, counter);
    }
    counter.dirty = true;
    return counter;
  }

  /**
   * The units' activity since the last call, and resets the deltas. A unit with open connections
   * is always reported, so a quiet websocket still counts as activity.
   */
  takeActivity(): Record<string, UnitActivity> {
    const out: Record<string, UnitActivity> = {};
    for (const [id, c] of this.#units) {
      if (!c.dirty && c.openConnections === 0) continue;
      out[id] = { requests: c.requests, openConnections: c.openConnections, bytesIn: c.bytesIn, bytesOut: c.bytesOut };
      c.requests = 0;
      c.bytesIn = 0;
      c.bytesOut = 0;
      c.dirty = false;
      if (c.openConnections === 0) this.#units.delete(id);
    }
    return out;
  }

  /** Forgets the hosts that no longer have a route. */
  retainHosts(keep: (host: string) => boolean): void {
    for (const host of this.#hosts.keys()) if (!keep(host)) this.#hosts.delete(host);
  }

  /** The per-host section of the stats file. */
  hosts(): Record<string, HostStats> {
    const out: Record<string, HostStats> = {};
    for (const [host, counter] of this.#hosts) out[host] = counter.snapshot();
    return out;
  }
}
