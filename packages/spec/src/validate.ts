import type { z } from "zod";
import { ContractError, type FieldIssue } from "./errors.ts";
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
} as const;

/** The name of a contract in {@link CONTRACTS}. */
export type ContractName = keyof typeof CONTRACTS;

/** Formats a zod issue path as people write it: `domains[0].name`, or `(root)` when empty. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? "(root)" : out;
}

function issuesOf(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => {
    // An unknown key is reported on its parent object; name the key itself so the field is clear.
    if (issue.code === "unrecognized_keys") {
      return { field: formatPath([...issue.path, issue.keys.join(",")]), message: `unknown field${issue.keys.length > 1 ? "s" : ""} (not part of the schema)` };
    }
    return { field: formatPath(issue.path), message: issue.message };
  });
}

/**
 * Validates a parsed document against a schema.
 * @param schema the contract's schema.
 * @param value the parsed JSON.
 * @param file the file it came from, named in the error.
 * @returns the document with defaults filled in.
 * @throws ContractError (SPEC_ERR_INVALID) naming the file and every bad field.
 */
export function validate<S extends z.ZodType>(schema: S, value: unknown, file: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ContractError("SPEC_ERR_INVALID", file, issuesOf(result.error), { cause: result.error });
  return result.data;
}

/**
 * Parses JSON text without validating it.
 * @throws ContractError (SPEC_ERR_PARSE) naming the file, for text that is not JSON (empty files included).
 */
export function readJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    const reason = text.trim() === "" ? "the file is empty" : `not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`;
    throw new ContractError("SPEC_ERR_PARSE", file, [{ field: "(root)", message: reason }], { cause });
  }
}

/**
 * Parses JSON text and validates it.
 * @throws ContractError: SPEC_ERR_PARSE for text that is not JSON (empty files included), else as {@link validate}.
 */
export function parseJson<S extends z.ZodType>(schema: S, text: string, file: string): z.output<S> {
  return validate(schema, readJsonText(text, file), file);
}

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
