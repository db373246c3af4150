import type { ChildProcess } from "node:child_process";
import nodeCluster from "node:cluster";
import { createServer } from "node:net";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { startStatsHeartbeat } from "@coyote/component";
import { ActivatorClient } from "@coyote/spec";
import type { CoyoteLogger } from "@coyote/log";
import type { UnitActivity } from "@coyote/spec";
import { SnitchProxyError } from "./errors.ts";
import type { Listen, ProxyOptions, TrafficReport } from "./proxy.ts";
import { LATENCY_BUCKETS_MS } from "./stats.ts";

/** What a worker is told to run: the proxy options that cross a process boundary. */
export type WorkerOptions = Omit<ProxyOptions, "logger" | "activator" | "onTraffic" | "writeStats" | "connectionShare"> & {
  /** The log file every worker appends to. */
  readonly logFile: string;
  readonly logLevel?: "debug" | "info";
};

/** Messages between the cluster and its workers. */
export type ToWorker =
  | { readonly type: "start"; readonly options: WorkerOptions; readonly share: number }
  | { readonly type: "limit"; readonly maxConnections: number }
  | { readonly type: "move"; readonly https: Listen; readonly http: Listen | undefined; readonly publicHttpsPort: number | undefined }
  | { readonly type: "stop"; readonly graceMs: number };
/** Messages from a worker. */
export type FromWorker =
  | { readonly type: "ready"; readonly https: AddressInfo; readonly http: AddressInfo | undefined }
  | { readonly type: "traffic"; readonly traffic: TrafficReport }
  | { readonly type: "failed"; readonly message: string }
  | { readonly type: "moved"; readonly https: AddressInfo; readonly http: AddressInfo | undefined }
  | { readonly type: "move-failed"; readonly message: string };

/** How the cluster is run. */
export interface ClusterOptions extends WorkerOptions {
  /** Worker processes; the machine's parallelism by default. */
  readonly workers?: number;
  /** The cluster's own logger (worker starts, exits and restarts). */
  readonly logger: CoyoteLogger;
  /** Whether the cluster writes `stats/snitch-proxy.json` (merged from the workers); true by default. */
  readonly writeStats?: boolean;
  /** The activator's client; one for the state folder by default. */
  readonly activator?: ActivatorClient;
  /**
   * Node and V8 flags for the workers, added before the parent's own (so a flag the parent was
   * started with wins); `WORKER_NODE_FLAGS` by default.
   */
  readonly workerNodeFlags?: readonly string[];
}

/**
 * The workers' default V8 flags: a young generation of 4 MiB semi-spaces instead of V8's default,
 * which grows to 64 MiB in Node's builds. A proxy's per-request garbage dies within its request,
 * yet with the large default each scavenge found 1-3 MB still reachable (9-12% of what had been
 * allocated, more the larger the space) and paused the worker for 3-20 ms while every connection
 * on it waited: that was most of the HTTP/1.1 latency tail. With 4 MiB a scavenge keeps about
 * 60 KB and takes about a millisecond, and the throughput is unchanged (bench/proxy,
 * docs/BENCHMARKS.md).
 */
export const WORKER_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=4"];

/** A running cluster of proxy workers. */
export interface RunningCluster {
  /** The bound TLS address (it changes with {@link RunningCluster.move}). */
  readonly httpsAddress: AddressInfo;
  readonly httpAddress: AddressInfo | undefined;
  /** The workers' pids. */
  readonly pids: () => number[];
  /** Each worker's open TLS connections, as it last reported them (every activity interval). */
  readonly connectionsByWorker: () => number[];
  /** The workers' per-host stats and counters, added up (for `stats/snitch-proxy.json`). */
  readonly stats: () => { hosts: Record<string, HostStats>; counters: Record<string, number> };
  /** Changes the connection limit of the whole cluster, live. */
  setMaxConnections(limit: number): void;
  /**
   * Moves every worker's listeners to new addresses; connections open on the old ones finish
   * there. A worker started later starts on the new ones.
   * @param publicHttpsPort the HTTPS port redirects name from now on; unchanged when undefined.
   * @throws when a worker could not bind a new address, or did not answer in time.
   */
  move(https: Listen, http: Listen | undefined, publicHttpsPort?: number): Promise<void>;
  stop(graceMs?: number): Promise<void>;
}

type HostStats = TrafficReport["hosts"][string];

/** The name of a `--flag=value` or `--flag` argument, with V8's `_` and `-` made alike. */
const flagName = (arg: string): string => (arg.split("=")[0] ?? arg).replaceAll("_", "-");

/**
 * Node's flags for a worker: `defaults` unless the parent sets the same flag, then the parent's
 * own (its loader, tsx, and any V8 flag it was started with), without the test runner's flags.
 */
export function workerExecArgv(defaults: readonly string[], argv: readonly string[] = process.execArgv): string[] {
  const parentFlags = new Set(argv.map(flagName));
  const out: string[] = defaults.filter((flag) => !parentFlags.has(flagName(flag)));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg.startsWith("--test")) {
      if (!arg.includes("=") && arg !== "--test" && argv[i + 1] !== undefined && !(argv[i + 1] ?? "").startsWith("--")) i++;
      continue;
    }
    out.push(arg);
  }
  return out;
}

/** Adds one host's stats into another (histograms bucket by bucket). */
function addHost(into: HostStats | undefined, from: HostStats): HostStats {
  if (!into) return { ...from, status: { ...from.status }, latencyCounts: [...from.latencyCounts], latencyBucketsMs: [...LATENCY_BUCKETS_MS] };
  return {
    requests: into.requests + from.requests,
    bytesIn: into.bytesIn + from.bytesIn,
    bytesOut: into.bytesOut + from.bytesOut,
    status: {
      "1xx": into.status["1xx"] + from.status["1xx"],
      "2xx": into.status["2xx"] + from.status["2xx"],
      "3xx": into.status["3xx"] + from.status["3xx"],
      "4xx": into.status["4xx"] + from.status["4xx"],
      "5xx": into.status["5xx"] + from.status["5xx"],
    },
    latencyBucketsMs: into.latencyBucketsMs,
    latencyCounts: into.latencyCounts.map((n, i) => n + (from.latencyCounts[i] ?? 0)),
    openConnections: into.openConnections + from.openConnections,
  };
}

/**
 * Where `at` asks for any free port (0), a port that is free now: the workers' listeners all
 * share one listening socket per address in the parent, keyed by the address they ask for, so
 * every cluster must ask for a port of its own (two asking for port 0 would share one).
 */
async function concretePort(at: Listen): Promise<Listen> {
  if (at.port !== 0) return at;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once("error", reject);
    probe.listen({ host: at.host, port: 0, exclusive: true }, resolve);
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return { host: at.host, port };
}

/**
 * Runs snitch-proxy as several worker processes, so that every core takes part (one Node process
 * tops out at one core of TLS and HTTP parsing). The parent holds the listening sockets and hands
 * each new connection to the next worker that has taken its last one (node:cluster's round-robin
 * scheduling), so that a burst of connections is spread evenly: SO_REUSEPORT's hash
 * splits 64 connections as unevenly as 25/39, and the worker with more of them sets the latency
 * tail (docs/BENCHMARKS.md). Handing a connection over costs the parent one message per
 * connection, not per request. The cluster keeps what must be one: it merges the workers'
 * per-host stats into `stats/snitch-proxy.json`, sums their units' activity (an open websocket in
 * any worker keeps a unit awake) into one report to docker-activator, splits the connection limit
 * between them, and restarts a worker that dies.
 */
export async function startProxyCluster(options: ClusterOptions): Promise<RunningCluster> {
  const count = Math.max(1, options.workers ?? availableParallelism());
  const { logger } = options;
  const activator = options.activator ?? new ActivatorClient(options.stateDir);
  // From the TypeScript sources the worker is worker.ts beside this file; from the bundle
  // (tooling/bundle) it is the bundle's own entry, beside the chunk this code is in.
  const workerFile = join(import.meta.dirname, import.meta.filename.endsWith(".ts") ? "worker.ts" : "snitch-proxy-worker.mjs");
  const workers = new Map<number, ChildProcess>();
  const latest = new Map<number, TrafficReport>();
  let stopping = false;
  let workerOptions: WorkerOptions = {
    stateDir: options.stateDir,
    logFile: options.logFile,
    https: options.https,
    ...(options.http ? { http: options.http } : {}),
    ...(options.logLevel ? { logLevel: options.logLevel } : {}),
    ...(options.publicHttpsPort === undefined ? {} : { publicHttpsPort: options.publicHttpsPort }),
    ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections }),
    ...(options.headersTimeoutMs === undefined ? {} : { headersTimeoutMs: options.headersTimeoutMs }),
    ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
    ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
    ...(options.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.handshakeTimeoutMs }),
    ...(options.upstreamTimeoutMs === undefined ? {} : { upstreamTimeoutMs: options.upstreamTimeoutMs }),
    ...(options.wakeTimeoutMs === undefined ? {} : { wakeTimeoutMs: options.wakeTimeoutMs }),
    ...(options.maxHeaderBytes === undefined ? {} : { maxHeaderBytes: options.maxHeaderBytes }),
    ...(options.accessLog === undefined ? {} : { accessLog: options.accessLog }),
    ...(options.activityIntervalMs === undefined ? {} : { activityIntervalMs: options.activityIntervalMs }),
    ...(options.connectionsCheckingIntervalMs === undefined ? {} : { connectionsCheckingIntervalMs: options.connectionsCheckingIntervalMs }),
  };

  /** Each worker's move under way, settled by its answer. */
  const moving = new Map<number, { resolve: (message: FromWorker & { type: "moved" }) => void; reject: (error: Error) => void }>();

  /** Open connections per unit in each worker, as last reported: the sum is the unit's. */
  const openByWorker = new Map<number, Record<string, number>>();
  const onTraffic = (slot: number, traffic: TrafficReport) => {
    latest.set(slot, traffic);
    const open: Record<string, number> = {};
    for (const [unit, activity] of Object.entries(traffic.activity)) open[unit] = activity.openConnections;
    openByWorker.set(slot, open);
    if (Object.keys(traffic.activity).length === 0) return;
    const units: Record<string, UnitActivity> = {};
    for (const [unit, activity] of Object.entries(traffic.activity)) {
      let openConnections = 0;
      for (const other of openByWorker.values()) openConnections += other[unit] ?? 0;
      units[unit] = { ...activity, openConnections };
    }
    activator.reportActivity({ units }).catch((error: unknown) => logger.debug({ err: error }, "reporting activity to docker-activator"));
  };

  const spawnWorker = (slot: number): Promise<FromWorker & { type: "ready" }> => {
    // The settings are the cluster module's, one set per process: they are given before each fork.
    nodeCluster.setupPrimary({ exec: workerFile, execArgv: workerExecArgv(options.workerNodeFlags ?? WORKER_NODE_FLAGS), stdio: ["ignore", "ignore", "inherit", "ipc"], serialization: "advanced" });
    const child = nodeCluster.fork().process;
    workers.set(slot, child);
    return new Promise((resolve, reject) => {
      let ready = false;
      child.on("message", (message: FromWorker) => {
        if (message.type === "ready") {
          ready = true;
          resolve(message);
        } else if (message.type === "traffic") onTraffic(slot, message.traffic);
        else if (message.type === "moved") moving.get(slot)?.resolve(message);
        else if (message.type === "move-failed") moving.get(slot)?.reject(new SnitchProxyError("SNITCH_ERR_WORKER_MOVE", `moving proxy worker ${String(slot)}: ${message.message}`));
        else reject(new SnitchProxyError("SNITCH_ERR_WORKER_START", `starting proxy worker ${String(slot)}: ${message.message}`));
      });
      child.once("exit", (code, signal) => {
        workers.delete(slot);
        openByWorker.delete(slot);
        moving.get(slot)?.reject(new SnitchProxyError("SNITCH_ERR_WORKER_MOVE", `moving proxy worker ${String(slot)}: it exited (${String(code ?? signal)})`));
        if (!ready) {
          reject(new SnitchProxyError("SNITCH_ERR_WORKER_START", `starting proxy worker ${String(slot)}: it exited (${String(code ?? signal)})`));
          return;
        }
        if (stopping) return;
        logger.event("COMPONENT_EXITED", { worker: slot, pid: child.pid, code, signal }, "a proxy worker died; starting another");
        void sleep(500).then(() => (stopping ? undefined : spawnWorker(slot).catch((error: unknown) => logger.event("ERROR", { err: error }, "restarting a proxy worker"))));
      });
      const start: ToWorker = { type: "start", options: workerOptions, share: count };
      child.send(start);
    });
  };

  // Round-robin hand-over, whatever NODE_CLUSTER_SCHED_POLICY says; fixed at the first fork.
  nodeCluster.schedulingPolicy = nodeCluster.SCHED_RR;
  const https = await concretePort(options.https);
  const http = options.http ? await concretePort(options.http) : undefined;
  workerOptions = { ...workerOptions, https, ...(http ? { http } : {}) };
  const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => spawnWorker(i)));
  const first = started[0]?.status === "fulfilled" ? started[0].value : undefined;
  const failed = started.find((result) => result.status === "rejected");
  if (failed || !first) {
    // One worker that cannot start is a cluster that cannot: the others are not left running.
    stopping = true;
    for (const child of workers.values()) child.kill("SIGKILL");
    throw failed?.reason ?? new SnitchProxyError("SNITCH_ERR_WORKER_START", "starting the proxy workers: none started");
  }

  /** The workers' latest per-host stats and counters, added up. */
  const merged = () => {
    const hosts: Record<string, HostStats> = {};
    const counters: Record<string, number> = { workers: workers.size };
    for (const traffic of latest.values()) {
      for (const [host, stats] of Object.entries(traffic.hosts)) hosts[host] = addHost(hosts[host], stats);
      for (const [name, value] of Object.entries(traffic.counters)) counters[name] = (counters[name] ?? 0) + value;
    }
    return { hosts, counters };
  };
  const stopStats = options.writeStats === false ? undefined : startStatsHeartbeat(options.stateDir, "snitch-proxy", { intervalMs: options.statsIntervalMs ?? 5000, extra: merged });
  logger.event("COMPONENT_STARTED", { workers: count, https: `${first.https.address}:${String(first.https.port)}` });

  const send = (message: ToWorker) => {
    for (const child of workers.values()) if (child.connected) child.send(message);
  };
  let addresses = { https: first.https, http: first.http };
  /** Asks one worker to move, and waits for its answer (10 s at most). */
  const moveWorker = (slot: number, child: ChildProcess, message: ToWorker & { type: "move" }): Promise<FromWorker & { type: "moved" }> =>
    new Promise<FromWorker & { type: "moved" }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new SnitchProxyError("SNITCH_ERR_WORKER_MOVE", `moving proxy worker ${String(slot)}: no answer within 10 s`)), 10_000);
      const settle = () => {
        clearTimeout(timer);
        moving.delete(slot);
      };
      moving.set(slot, {
        resolve: (moved) => {
          settle();
          resolve(moved);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
      child.send(message);
    });
  let moves: Promise<void> = Promise.resolve();
  return {
    get httpsAddress() {
      return addresses.https;
    },
    get httpAddress() {
      return addresses.http;
    },
    pids: () => [...workers.values()].map((child) => child.pid ?? 0),
    connectionsByWorker: () => [...workers.keys()].map((slot) => latest.get(slot)?.counters.openConnections ?? 0),
    stats: merged,
    setMaxConnections(limit: number) {
      if (!Number.isInteger(limit) || limit < 1) throw new SnitchProxyError("SNITCH_ERR_LIMIT_INVALID", `setting max connections: ${String(limit)} is not a positive whole number`);
      workerOptions = { ...workerOptions, maxConnections: limit };
      send({ type: "limit", maxConnections: limit });
    },
    move(https, http, publicHttpsPort) {
      const next = moves.then(async () => {
        const bound = { https: await concretePort(https), http: http ? await concretePort(http) : undefined };
        // A worker started from now on starts on the new addresses.
        workerOptions = { ...workerOptions, https: bound.https, ...(bound.http ? { http: bound.http } : {}), ...(publicHttpsPort === undefined ? {} : { publicHttpsPort }) };
        const children = [...workers.entries()].filter(([, child]) => child.connected);
        const [moved] = await Promise.all(children.map(([slot, child]) => moveWorker(slot, child, { type: "move", https: bound.https, http: bound.http, publicHttpsPort })));
        if (!moved) return;
        addresses = { https: moved.https, http: moved.http };
        logger.event("CONFIG_RELOADED", { what: "listen", workers: children.length, https: `${moved.https.address}:${String(moved.https.port)}`, http: moved.http ? `${moved.http.address}:${String(moved.http.port)}` : undefined });
      });
      moves = next.catch(() => undefined);
      return next;
    },
    async stop(graceMs = 5000) {
      stopping = true;
      const exits = [...workers.values()].map((child) => new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once("exit", () => resolve());
      }));
      send({ type: "stop", graceMs });
      const all = Promise.all(exits);
      // The timer is cancelled once every worker has gone: a stop that finished early must not
      // keep the process that asked for it alive for the rest of the grace.
      const cancel = new AbortController();
      const late = await Promise.race([all.then(() => false), sleep(graceMs + 3000, true, { signal: cancel.signal }).catch(() => false)]);
      cancel.abort();
      if (late) for (const child of workers.values()) if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
      await all;
      await stopStats?.();
      if (!options.activator) activator.close();
    },
  };
}
