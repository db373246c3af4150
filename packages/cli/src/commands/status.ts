import { readdir, stat } from "node:fs/promises";
import type { Command } from "commander";
import { ComponentStats, ServerSpec, ServiceStatus, StateStore } from "@coyote/spec";
import { COMPONENTS } from "../components.ts";
import { gatherDaemons, type DaemonReport } from "../daemons.ts";
import type { CliEnv } from "../env.ts";
import { CliError, EXIT } from "../errors.ts";
import { formatDuration, table, type Io } from "../io.ts";

/** One service (or the server) as `coyote status` reports it. */
export interface ServiceReport {
  /** The spec's id. */
  readonly id: string;
  /** The spec's generation, or undefined when the spec file is invalid. */
  readonly generation: number | undefined;
  /** What the minion last wrote, if anything. */
  readonly status: ServiceStatus | undefined;
  /** Why the spec or its status could not be read. */
  readonly problem: string | undefined;
}

/** One component as `coyote status` reports it. */
export interface ComponentReport {
  /** The component's name. */
  readonly name: string;
  /** `running` (its stats are fresh and its pid lives), `stopped`, or `not built` (no start() yet). */
  readonly state: "running" | "stopped" | "not built";
  /** Details: pid and uptime, or where it is being built. */
  readonly detail: string;
}

/** Gathers what `coyote status` shows. Reads only; never repairs or writes. */
export async function gatherStatus(store: StateStore): Promise<{ services: ServiceReport[]; components: ComponentReport[]; daemons: DaemonReport[] }> {
  const stats = new Map<string, ComponentStats>();
  const files = await readdir(store.path("stats")).catch(() => [] as string[]);
  for (const file of files.filter((f) => f.endsWith(".json"))) {
    const found = await store.readJson(`stats/${file}`, ComponentStats).catch(() => undefined);
    if (found) stats.set(found.component, found);
  }
  const minion = stats.get("minion");
  const minionRunning = minion !== undefined && isAlive(minion.pid);
  const services: ServiceReport[] = [];
  for (const entry of await store.listSpecs()) {
    if ("error" in entry) {
      services.push({ id: entry.id, generation: undefined, status: undefined, problem: entry.error.message });
      continue;
    }
    try {
      let status = await store.readJson(`status/${entry.id}.json`, ServiceStatus);
      if (status === undefined && entry.kind === "Server" && minionRunning) status = await serverStatus(store, entry.generation);
      services.push({ id: entry.id, generation: entry.generation, status, problem: undefined });
    } catch (error) {
      services.push({ id: entry.id, generation: entry.generation, status: undefined, problem: error instanceof Error ? error.message : String(error) });
    }
  }
  const components = COMPONENTS.map((definition): ComponentReport => {
    if (!definition.start) return { name: definition.name, state: "not built", detail: `arrives with ${definition.plannedIn ?? "a later version"}` };
    const own = stats.get(definition.name);
    if (own && isAlive(own.pid)) {
      return { name: definition.name, state: "running", detail: `pid ${own.pid}, up ${formatDuration((Date.now() - Date.parse(own.startedAt)) / 1000)}` };
    }
    return { name: definition.name, state: "stopped", detail: own ? `last seen ${own.writtenAt}` : "never started here" };
  });
  return { services, components, daemons: await gatherDaemons(store.root) };
}

/**
 * Where the minion keeps the last valid server spec it applied (see `apps/minion/src/minion.ts`).
 * The minion writes no `status/server.json`: the box's own spec is not reconciled like a service,
 * it shapes the actuators. What the minion runs on is this copy, so it is the server's status.
 */
const MINION_SERVER_SPEC = "minion/last-good/server.json";

/**
 * The server's own condition, from what the running minion keeps: `Applied` is True once the
 * minion runs on the spec's current generation. An unreadable copy is reported, not hidden.
 */
async function serverStatus(store: StateStore, generation: number): Promise<ServiceStatus> {
  let applied: ServerSpec | undefined;
  let problem: string | undefined;
  try {
    applied = await store.readJson(MINION_SERVER_SPEC, ServerSpec);
  } catch (error) {
    problem = error instanceof Error ? error.message : String(error);
  }
  const since = await stat(store.path(MINION_SERVER_SPEC)).then((s) => s.mtime.toISOString(), () => new Date().toISOString());
  const observed = applied?.generation ?? 0;
  const current = applied !== undefined && observed >= generation;
  const message = current
    ? `the minion runs on generation ${observed}`
    : problem !== undefined
      ? `the minion's copy of the server spec is unreadable: ${problem}`
      : applied === undefined
        ? "the minion has not applied a server spec yet"
        : `the minion runs on generation ${observed}; generation ${generation} is not applied yet`;
  return {
    schemaVersion: 1,
    id: "server",
    observedGeneration: observed,
    updatedAt: since,
    conditions: [{ type: "Applied", status: current ? "True" : "False", reason: current ? "Applied" : "Pending", message, observedGeneration: observed, lastTransitionTime: since }],
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Adds `coyote status`. */
export function statusCommand(program: Command, env: CliEnv, io: Io): void {
  program
    .command("status")
    .description("show each service with its conditions, each component and each daemon (DNS, mail, XMPP)")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }) => {
      const store = await StateStore.open(env.stateDir);
      const report = await gatherStatus(store);
      if (options.json) {
        io.out(JSON.stringify(report, null, 2));
        return;
      }
      io.out(`state: ${env.stateDir}`);
      io.out("");
      io.out("components:");
      for (const line of table(report.components.map((c) => [`  ${c.name}`, c.state, c.detail]))) io.out(line);
      io.out("");
      io.out("daemons:");
      for (const line of table(report.daemons.map((d) => [`  ${d.name}`, d.state, d.detail]))) io.out(line);
      io.out("");
      if (report.services.length === 0) {
        io.out("services: none yet (coyote spec apply FILE adds one)");
      } else {
        io.out("services:");
        const rows = [["  ID", "GENERATION", "OBSERVED", "CONDITIONS"]];
        for (const s of report.services) {
          const conditions = s.problem
            ? `problem: ${s.problem}`
            : s.status
              ? s.status.conditions.map((c) => `${c.type}=${c.status} (${c.reason}: ${c.message})`).join("; ") || "no conditions"
              : "not observed yet: no minion has reported on it";
          const observed = s.status ? String(s.status.observedGeneration) : "-";
          const stale = s.status && s.generation !== undefined && s.status.observedGeneration < s.generation ? " (behind)" : "";
          rows.push([`  ${s.id}`, s.generation === undefined ? "-" : String(s.generation), observed + stale, conditions]);
        }
        for (const line of table(rows)) io.out(line);
      }
      if (report.services.some((s) => s.problem)) throw new CliError("status: some specs or statuses are invalid (shown above)", EXIT.INVALID);
    });
}
