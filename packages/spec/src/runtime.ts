import { z } from "zod";
import { DumpState, Readiness, type ServerSpec } from "./specs.ts";
import {
  Environment,
  Fingerprint,
  HostPort,
  HttpUrl,
  Port,
  SchemaVersion,
  SecretRef,
  ServiceId,
  Timestamp,
  WebHostname,
} from "./primitives.ts";

const PascalCase = z.string().regex(/^[A-Z][A-Za-z0-9]{0,63}$/, {
  error: (issue) => `must be a PascalCase word like "Ready": ${JSON.stringify(issue.input)}`,
});

/**
 * One condition of a service's status, as Kubernetes has them: the time moves only when `status`
 * flips; `reason` is a machine word, `message` is for people.
 */
export const Condition = z.strictObject({
  type: PascalCase,
  status: z.enum(["True", "False", "Unknown"], { error: 'a condition status is "True", "False" or "Unknown"' }),
  reason: PascalCase,
  message: z.string().max(2000),
  observedGeneration: z.int().min(0),
  lastTransitionTime: Timestamp,
});
/** One condition of a service's status. */
export type Condition = z.infer<typeof Condition>;

/**
 * The owner named where something is the box's own rather than a service's: its status, its
 * routes (the panel on its hostname) and its hostname's certificate. No service may take this id.
 */
export const BOX_OWNER = "server";

/** The secret in `secrets/` the panel makes, and snitch-proxy sends on the box's own routes to vouch for the client it names. */
export const PANEL_FORWARDING_SECRET = "panel-forwarding-token";

/** The request header that carries {@link PANEL_FORWARDING_SECRET} to the panel. */
export const FORWARDED_BY_HEADER = "x-coyote-forwarded-by";

/** What the minion observed of a service: `status/<id>.json`. */
export const ServiceStatus = z
  .strictObject({
    schemaVersion: SchemaVersion,
    id: z.union([ServiceId, z.literal(BOX_OWNER)]),
    observedGeneration: z.int().min(0),
    conditions: z.array(Condition).max(64),
    updatedAt: Timestamp,
  })
  .superRefine((status, ctx) => {
    status.conditions.forEach((condition, i) => {
      if (status.conditions.findIndex((c) => c.type === condition.type) !== i) {
        ctx.addIssue({ code: "custom", path: ["conditions", i, "type"], message: `condition ${condition.type} appears twice` });
      }
    });
  });
/** What the minion observed of a service. */
export type ServiceStatus = z.infer<typeof ServiceStatus>;

const Count = z.int().min(0);

/** Traffic of one hostname through snitch-proxy. */
export const HostStats = z.strictObject({
  requests: Count,
  bytesIn: Count,
  bytesOut: Count,
  status: z.strictObject({ "1xx": Count, "2xx": Count, "3xx": Count, "4xx": Count, "5xx": Count }),
  /** Upper bounds of the latency buckets in milliseconds, ascending; the last bucket is open. */
  latencyBucketsMs: z.array(z.number().positive()).max(64),
  /** Requests per bucket; one more entry than `latencyBucketsMs` for the open bucket. */
  latencyCounts: z.array(Count).max(65),
  openConnections: Count,
});

/** The state of one docker-activator unit. */
export const UnitStats = z.strictObject({
  state: z.enum(["stopped", "starting", "running", "dumping", "stopping", "failed"]),
  wakeCount: Count,
  lastWakeMs: z.number().min(0).optional(),
  memoryBytes: Count.optional(),
  lastActivityAt: Timestamp.optional(),
  bytesIn: Count,
  bytesOut: Count,
});
/** The state of one docker-activator unit. */
export type UnitStats = z.infer<typeof UnitStats>;

/**
 * What one daemon reports about itself: `stats/<component>.json`, rewritten atomically every few
 * seconds. Each daemon fills the section that fits it.
 */
export const ComponentStats = z.strictObject({
  schemaVersion: SchemaVersion,
  component: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/),
  pid: z.int().min(1),
  startedAt: Timestamp,
  writtenAt: Timestamp,
  process: z.strictObject({ rssBytes: Count, heapUsedBytes: Count, uptimeSeconds: z.number().min(0) }),
  hosts: z.record(WebHostname, HostStats).optional(),
  units: z.record(ServiceId, UnitStats).optional(),
  counters: z.record(z.string(), z.number()).optional(),
});
/** What one daemon reports about itself. */
export type ComponentStats = z.infer<typeof ComponentStats>;

/**
 * One line of `alarms.jsonl`. The file is append-only: an alarm is raised by one line and cleared
 * by a later line with the same `key`.
 */
export const Alarm = z.strictObject({
  schemaVersion: SchemaVersion,
  id: z.string().min(8).max(64),
  /** What the alarm is about, stable across raise and clear (e.g. `minion/converge/blog`). */
  key: z.string().min(1).max(200),
  state: z.enum(["raised", "cleared"]),
  severity: z.enum(["critical", "warning", "info"]),
  source: z.string().min(1).max(64),
  serviceId: ServiceId.optional(),
  code: z.string().regex(/^[A-Z][A-Z0-9_]{2,63}$/, { error: "an alarm code is UPPER_SNAKE_CASE" }),
  message: z.string().min(1).max(2000),
  at: Timestamp,
});
/** One line of `alarms.jsonl`. */
export type Alarm = z.infer<typeof Alarm>;

/** Where a route sends its traffic: a fixed address, or a docker-activator unit woken on demand. */
export const Upstream = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("address"), address: HostPort }),
  z.strictObject({ kind: z.literal("unit"), unit: ServiceId }),
  /** `root` is the absolute, normalised folder snickers resolved inside the service's site folder. */
  z.strictObject({
    kind: z.literal("static"),
    root: z
      .string()
      .max(4096)
      .refine((root) => root.startsWith("/") && !/[\\\p{Cc}]/u.test(root) && root.split("/").every((segment) => segment !== "." && segment !== ".."), {
        error: (issue) => `not an absolute, normalised folder: ${JSON.stringify(issue.input)}`,
      }),
  }),
]);

/** `proxy/routes.json`: what snitch-proxy serves, written by the minion's snickers actuator. */
export const ProxyRoutes = z
  .strictObject({
    schemaVersion: SchemaVersion,
    generatedAt: Timestamp,
    /** Capacity limits from the server spec, applied live. */
    limits: z
      .strictObject({
        maxConnections: z.int().min(1).max(1000000),
        /** Connections one client address (an IPv6 /64) may hold at once. */
        maxConnectionsPerAddress: z.int().min(1).max(1000000).optional(),
      })
      .optional(),
    /**
     * Where snitch-proxy listens, from the server spec (see {@link proxyListenFor}). A change moves
     * the running proxy's listeners; absent, it listens where the server spec's defaults say.
     */
    listen: z
      .strictObject({
        /** Every interface when the box has a public address, loopback otherwise. */
        host: z.enum(["::", "127.0.0.1"]),
        https: Port,
        http: Port,
      })
      .optional(),
    routes: z
      .array(
        z.strictObject({
          host: WebHostname,
          pathPrefix: z.string().startsWith("/", { error: "a path prefix starts with /" }).default("/"),
          /** The service the route is for, or `server` for the box's own (its panel on its hostname). */
          serviceId: z.union([ServiceId, z.literal(BOX_OWNER)]),
          upstream: Upstream,
          allowedUpstreams: z.array(HostPort).optional(),
          /** Send Strict-Transport-Security: browsers then reach the host over HTTPS only. */
          hsts: z.boolean().optional(),
        }),
      )
      .max(100000),
  })
  .superRefine((doc, ctx) => {
    const seen = new Set<string>();
    doc.routes.forEach((route, i) => {
      const key = `${route.host}${route.pathPrefix}`;
      if (seen.has(key)) ctx.addIssue({ code: "custom", path: ["routes", i], message: `route ${key} is listed twice` });
      seen.add(key);
    });
  });
/** What snitch-proxy serves. */
export type ProxyRoutes = z.infer<typeof ProxyRoutes>;
/** Where snitch-proxy listens: the `listen` block of `proxy/routes.json`. */
export type ProxyListen = NonNullable<ProxyRoutes["listen"]>;

/**
 * Where a server spec puts snitch-proxy: its HTTPS and HTTP ports, on every interface when the box
 * has a public address and on loopback otherwise (a box under development is not exposed by
 * accident). The minion writes it into `proxy/routes.json`; the proxy, until then, uses it with the
 * server spec's defaults.
 */
export function proxyListenFor(server: Pick<ServerSpec, "publicIPv4" | "publicIPv6" | "ports">): ProxyListen {
  const host = server.publicIPv4 === undefined && server.publicIPv6 === undefined ? "127.0.0.1" : "::";
  return { host, https: server.ports.https, http: server.ports.http };
}

/**
 * `activator/units.json`: the sleeping-capable backends, written by the minion's backends actuator,
 * with what docker-activator needs of the server spec (the minion is the one daemon that reads
 * specs): where container units run and the memory budget of the units. Absent (a fragment, or a
 * box with no units yet), the server spec's defaults hold: `auto` and 2048 MiB.
 */
export const ActivatorUnits = z
  .strictObject({
    schemaVersion: SchemaVersion,
    generatedAt: Timestamp,
    /** The server spec's `runtime`: `docker` needs an engine, `process` uses none, `auto` uses one when it answers. */
    runtime: z.enum(["auto", "docker", "process"]).optional(),
    /** The server spec's `limits.memoryBudgetMb`. */
    memoryBudgetMb: z.int().min(64).max(1048576).optional(),
    units: z
      .array(
        z
          .strictObject({
            id: ServiceId,
            serviceId: ServiceId,
            runtime: z.enum(["docker", "process"]),
            image: z.string().min(1).optional(),
            command: z.array(z.string()).optional(),
            cwd: z.string().optional(),
            host: z.ipv4().default("127.0.0.1"),
            port: Port,
            env: Environment.default({}),
            /** The secret (in `secrets/`) whose values the activator adds to `env` when it creates the unit. */
            envSecret: SecretRef.optional(),
            memoryMb: z.int().min(16).max(1048576),
            idleTimeoutSeconds: z.int().min(0).max(604800),
            dumpState: DumpState.optional(),
            dumpTimeoutSeconds: z.int().min(1).max(3600),
            readiness: Readiness,
            readinessTimeoutSeconds: z.int().min(1).max(600),
          })
          .superRefine((unit, ctx) => {
            if (unit.runtime === "docker" && !unit.image) ctx.addIssue({ code: "custom", path: ["image"], message: "a docker unit needs an image" });
            if (unit.runtime === "process" && !unit.command?.length) ctx.addIssue({ code: "custom", path: ["command"], message: "a process unit needs a command" });
          }),
      )
      .max(10000),
  })
  .superRefine((doc, ctx) => {
    doc.units.forEach((unit, i) => {
      if (doc.units.findIndex((u) => u.id === unit.id) !== i) ctx.addIssue({ code: "custom", path: ["units", i, "id"], message: `unit ${unit.id} is listed twice` });
      if (doc.units.findIndex((u) => u.host === unit.host && u.port === unit.port) !== i) {
        ctx.addIssue({ code: "custom", path: ["units", i, "port"], message: `${unit.host}:${unit.port} is already used by another unit` });
      }
    });
  });
/** The sleeping-capable backends. */
export type ActivatorUnits = z.infer<typeof ActivatorUnits>;

/** `inbox/<id>.json`: a coyote request from another server, waiting for a human in the crm. */
export const InboxRequest = z
  .strictObject({
    schemaVersion: SchemaVersion,
    id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/),
    receivedAt: Timestamp,
    from: z.strictObject({ name: z.string().max(100).optional(), address: HttpUrl, fingerprint: Fingerprint }),
    request: z.enum(["monitor", "become-backup", "stop-backup", "become-failover", "stop-failover", "switch-authority"]),
    serviceId: ServiceId.optional(),
    message: z.string().max(2000).optional(),
    state: z.enum(["pending", "accepted", "refused"]).default("pending"),
    decidedAt: Timestamp.optional(),
    decidedBy: z.string().max(200).optional(),
  })
  .superRefine((req, ctx) => {
    if (req.request !== "monitor" && !req.serviceId) ctx.addIssue({ code: "custom", path: ["serviceId"], message: `a ${req.request} request names the service` });
    if (req.state !== "pending" && !req.decidedAt) ctx.addIssue({ code: "custom", path: ["decidedAt"], message: "a decided request says when" });
  });
/** A coyote request waiting for a human. */
export type InboxRequest = z.infer<typeof InboxRequest>;

/**
 * The secret (`secrets/activation-token`) that holds the box's one-time activation token until the
 * box is activated: `coyote up` (or install.sh) makes and prints it, the crm's wizard checks it and
 * removes it once the box is activated.
 */
export const ACTIVATION_SECRET = "activation-token";

/**
 * The wake API of docker-activator, HTTP/1.1 on the unix socket `run/docker-activator.sock`:
 *
 * - `POST /wake` with a {@link WakeRequest}: starts the unit if it sleeps (concurrent wakes of one
 *   unit start it once) and answers a {@link WakeResponse} once its readiness probe passes. Errors
 *   are a {@link ControlError} with status 404 (`UNIT_UNKNOWN`), 503 (`WAKE_FAILED`: it cannot
 *   start) or 504 (`WAKE_TIMEOUT`: not ready within its `readinessTimeoutSeconds`).
 * - `POST /activity` with an {@link ActivityReport}: the traffic snitch-proxy saw since its last
 *   report; answers 204. A unit with requests, open connections or bytes flowing is not idle.
 * - `GET /units`: the units and their {@link UnitStats}, keyed by unit id.
 */
export const ACTIVATOR_SOCKET = "run/docker-activator.sock";

/** Asks for a unit to be running. */
export const WakeRequest = z.strictObject({
  unit: ServiceId,
  /** The request that caused the wake, for the timeline. */
  requestId: z.string().max(128).optional(),
});
/** Asks for a unit to be running. */
export type WakeRequest = z.infer<typeof WakeRequest>;

/** A unit that is running and ready. */
export const WakeResponse = z.strictObject({
  unit: ServiceId,
  /** Where its traffic goes. */
  address: HostPort,
  /** Whether this wake started it (false: it was already running or starting). */
  started: z.boolean(),
  /** How long the caller waited, in milliseconds. */
  waitedMs: z.number().min(0),
});
/** A unit that is running and ready. */
export type WakeResponse = z.infer<typeof WakeResponse>;

/** Traffic of one unit since the previous report; `openConnections` is the current count. */
export const UnitActivity = z.strictObject({
  requests: Count,
  openConnections: Count,
  bytesIn: Count,
  bytesOut: Count,
});
/** Traffic of one unit since the previous report. */
export type UnitActivity = z.infer<typeof UnitActivity>;

/** What snitch-proxy saw of each unit's traffic since its previous report. */
export const ActivityReport = z.strictObject({ units: z.record(ServiceId, UnitActivity) });
/** What snitch-proxy saw of each unit's traffic since its previous report. */
export type ActivityReport = z.infer<typeof ActivityReport>;

/** The body of every error answer of a local control API. */
export const ControlError = z.strictObject({
  error: z.strictObject({ code: z.string().regex(/^[A-Z][A-Z0-9_]{2,63}$/), message: z.string().min(1).max(2000) }),
});
/** The body of every error answer of a local control API. */
export type ControlError = z.infer<typeof ControlError>;

/**
 * The file in `proxy/certs/` that holds the certificate of a name: the private key and the chain in
 * one PEM file (mode 0600), so that replacing it is one atomic rename and a reader never pairs a
 * new certificate with an old key. A wildcard `*.example.org` is stored as `_.example.org.pem`
 * (`_` cannot start a hostname, so the two never collide). snickers writes it; snitch-proxy reads it.
 */
export function certificateFileName(name: string): string {
  return `${name.startsWith("*.") ? `_${name.slice(1)}` : name}.pem`;
}

// `dns/acme-challenges.json` has a writer under a lock besides its schema: a module of its own.
export * from "./acme-challenges.ts";
