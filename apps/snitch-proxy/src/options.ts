// How snitch-proxy is run and what a running one offers (proxy.ts starts it).
import type { CoyoteLogger } from "@coyote/log";
import type { ActivatorClient } from "@coyote/spec";
import type { AddressInfo } from "node:net";
import type { RouteTable } from "./routes.ts";
import type { TrafficStats } from "./stats.ts";

/** Where a listener binds. */
export interface Listen {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
}

/** How snitch-proxy is run. Every limit has a default fit for a small appliance. */
export interface ProxyOptions {
  /**
   * The state folder: `proxy/routes.json`, `proxy/certs/`, `proxy/challenges/`, the local CA's
   * `proxy/ca/ca.pem` and `proxy/ca/ca.crl` (served under `/.well-known/coyote/`), `stats/`.
   */
  readonly stateDir: string;
  readonly logger: CoyoteLogger;
  /** The TLS listener (HTTP/2 and HTTP/1.1). */
  readonly https: Listen;
  /**
   * The plain HTTP listener: ACME HTTP-01 challenges, the local CA's certificate and CRL, and a
   * redirect to HTTPS for the rest.
   */
  readonly http?: Listen;
  /** The HTTPS port the world sees, for redirects (443 by default: no port in the URL). */
  readonly publicHttpsPort?: number;
  /** Connections allowed at once, until `proxy/routes.json` says otherwise; 10000 by default. */
  readonly maxConnections?: number;
  /**
   * Connections one client address (an IPv6 /64) may hold at once, until `proxy/routes.json` says
   * otherwise; 256 by default. Past it a new connection is destroyed at once.
   */
  readonly maxConnectionsPerAddress?: number;
  /** Time to receive a request's headers (slowloris), ms; 10 s. */
  readonly headersTimeoutMs?: number;
  /** Time to receive a whole HTTP/1.1 request, ms; 300 s. */
  readonly requestTimeoutMs?: number;
  /** An idle connection (or websocket tunnel, traffic either way counting) is closed after this, ms; 60 s. */
  readonly idleTimeoutMs?: number;
  /** An HTTP/1.1 connection between requests is closed after this, ms; 5 s. */
  readonly keepAliveTimeoutMs?: number;
  /** A TLS handshake must finish within this, ms; 10 s. */
  readonly handshakeTimeoutMs?: number;
  /** Time for an upstream to start its answer before a 504, ms; 60 s. */
  readonly upstreamTimeoutMs?: number;
  /** Time a request may wait for its sleeping unit to wake before a 504, ms; 60 s. */
  readonly wakeTimeoutMs?: number;
  /** Largest request header block, bytes; 16 KiB (larger gets 431). */
  readonly maxHeaderBytes?: number;
  /** Log every request (RESPONSE_SENT); on by default. */
  readonly accessLog?: boolean;
  /** How often `stats/snitch-proxy.json` is written, ms; 5 s. Ignored when `writeStats` is false. */
  readonly statsIntervalMs?: number;
  /** Whether this proxy writes the stats file (a worker of several does not). */
  readonly writeStats?: boolean;
  /** How often unit activity is reported to docker-activator, ms; 1 s. */
  readonly activityIntervalMs?: number;
  /** The activator's client; one for the state folder's socket by default. */
  readonly activator?: ActivatorClient;
  /** How often the HTTP/1.1 timeouts are checked, ms; 1 s. */
  readonly connectionsCheckingIntervalMs?: number;
  /** The number of processes sharing the ports: each takes this share of the connection limit. */
  readonly connectionShare?: number;
  /**
   * Hands the traffic to a parent instead of reporting it: called every `activityIntervalMs` with
   * the units' activity since the last call and the cumulative per-host stats (cluster workers).
   */
  readonly onTraffic?: (traffic: TrafficReport) => void;
}

/** What a worker process hands its parent every activity interval. */
export interface TrafficReport {
  readonly activity: ReturnType<TrafficStats["takeActivity"]>;
  readonly hosts: ReturnType<TrafficStats["hosts"]>;
  readonly counters: Record<string, number>;
}

/** A running proxy. */
export interface RunningProxy {
  /** The bound TLS address. */
  readonly httpsAddress: AddressInfo;
  /** The bound plain HTTP address, when there is one. */
  readonly httpAddress: AddressInfo | undefined;
  /** The traffic counters. */
  readonly stats: TrafficStats;
  /** The routes in service. */
  readonly routes: () => RouteTable;
  /** Re-reads `proxy/routes.json` now (it is also watched). */
  reloadRoutes(): Promise<void>;
  /** Changes the connection limit live; the routes file's limit replaces it on its next change. */
  setMaxConnections(limit: number): void;
  /**
   * Moves the listeners: each whose address changes is bound anew, and the old one stops
   * accepting while its open connections finish.
   * @param httpsPort the HTTPS port redirects name from now on; unchanged by default.
   * @throws when a new address cannot be bound; nothing has moved then.
   */
  move(https: Listen, http: Listen | undefined, httpsPort?: number): Promise<void>;
  /** Stops accepting, lets requests in flight finish (up to `graceMs`), then closes everything. */
  stop(graceMs?: number): Promise<void>;
}
