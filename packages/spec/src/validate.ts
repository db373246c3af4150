import { ContractError } from "./errors.ts";
import { formatPath, parseJson, readJsonText, validate } from "./json-contract.ts";
import { InboxDecision } from "./inbox-decisions.ts";
import { ActivatorUnits, Alarm, ComponentStats, InboxRequest, ProxyRoutes, ServiceStatus } from "./runtime.ts";
import { ServerSpec, ServiceSpec, type Spec } from "./specs.ts";

/**
 * Every on-disk contract (docs/ARCHITECTURE.md, "On disk") with its schema and where it lives relative to
 * `COYOTE_STATE`. The one list that tools (the CLI, tests, the crm) consult.
 */
export const CONTRACTS = {
  server: { schema: ServerSpec, path: "specs/server.json" },
  service: { schema: ServiceSpec, path: "specs/services/<id>.json" },
  status: { schema: ServiceStatus, path: "status/<id>.json" },
  stats: { schema: ComponentStats, path: "stats/<component>.json" },
  alarm: { schema: Alarm, path: "alarms.jsonl (one per line)" },
  routes: { schema: ProxyRoutes, path: "proxy/routes.json" },
  units: { schema: ActivatorUnits, path: "activator/units.json" },
  inbox: { schema: InboxRequest, path: "inbox/<id>.json" },
  inboxDecision: { schema: InboxDecision, path: "inbox-decisions/<id>.json" },
} as const;

/** The name of a contract in {@link CONTRACTS}. */
export type ContractName = keyof typeof CONTRACTS;

export { formatPath, parseJson, readJsonText, validate };

/**
 * Validates a spec of either kind, chosen by its `kind` field.
 * @throws ContractError: SPEC_ERR_UNKNOWN_KIND when `kind` is missing or unknown, else as {@link validate}.
 */
export function parseSpec(value: unknown, file: string): Spec {
  const kind = typeof value === "object" && value !== null && "kind" in value ? value.kind : undefined;
  if (kind === "Server") return validate(ServerSpec, value, file);
  if (kind === "Service") return validate(ServiceSpec, value, file);
  throw new ContractError("SPEC_ERR_UNKNOWN_KIND", file, [
    { field: "kind", message: `must be "Server" or "Service", not ${kind === undefined ? "missing" : JSON.stringify(kind)}` },
  ]);
}

/** The id a spec is stored under: `server` for the server spec, the service id otherwise. */
export function specId(spec: Spec): string {
  return spec.kind === "Server" ? "server" : spec.id;
}

/** The path of a spec relative to `COYOTE_STATE`. */
export function specPath(id: string): string {
  return id === "server" ? "specs/server.json" : `specs/services/${id}.json`;
}

/**
 * The server spec every component assumes while none has been written (an unactivated box): the
 * given spec, or the schema's defaults.
 */
export function serverOrDefaults(spec: ServerSpec | undefined): ServerSpec {
  return spec ?? validate(ServerSpec, { schemaVersion: 1, kind: "Server", name: "coyote", hostname: "coyote.localhost" }, "(server defaults)");
}
