import type { Command } from "commander";
import { EVENTS, formatTimeline, isEventName, logFilesIn, mergeTimeline, type EventName, type TimelineFilter } from "@coyote/log";
import type { CliEnv } from "../env.ts";
import { CliError, EXIT } from "../errors.ts";
import type { Io } from "../io.ts";
import { join } from "node:path";

interface LogsOptions {
  timeline?: boolean;
  json?: boolean;
  since?: string;
  until?: string;
  request?: string;
  service?: string;
  component?: string;
  event?: string[];
  limit?: number;
}

/** Adds `coyote logs`. */
export function logsCommand(program: Command, env: CliEnv, io: Io): void {
  program
    .command("logs")
    .description("show the components' structured logs; --timeline merges them into one ordered story")
    .option("--timeline", "merge every component's log into one story ordered by time")
    .option("--json", "print the records as JSON lines")
    .option("--since <time>", "only records at or after this time (ISO 8601, or an age like 10m, 2h, 1d)")
    .option("--until <time>", "only records before this time (ISO 8601, or an age like 10m)")
    .option("--request <id>", "only records of this request id")
    .option("--service <id>", "only records of this service")
    .option("--component <name>", "only records of this component")
    .option("--event <name...>", `only these events (${EVENTS.join(", ")})`)
    .option("-n, --limit <count>", "show the last this many records", (v) => positiveInt(v, "--limit"))
    .action(async (options: LogsOptions) => {
      const files = await logFilesIn(join(env.stateDir, "logs"));
      if (files.length === 0) {
        io.out(`no logs yet in ${join(env.stateDir, "logs")}`);
        return;
      }
      const filter: TimelineFilter = {
        ...(options.since === undefined ? {} : { since: parseTime(options.since, "--since") }),
        ...(options.until === undefined ? {} : { until: parseTime(options.until, "--until") }),
        ...(options.request === undefined ? {} : { requestId: options.request }),
        ...(options.service === undefined ? {} : { serviceId: options.service }),
        ...(options.component === undefined ? {} : { component: options.component }),
        ...(options.event === undefined ? {} : { events: options.event.map(eventName) }),
      };
      const { records, warnings } = await mergeTimeline(files, filter);
      for (const warning of warnings) io.err(`coyote: warning: ${warning}`);
      let shown = options.limit === undefined ? records : records.slice(-options.limit);
      if (!options.timeline) {
        // Without --timeline, each component's story is told on its own, one after the other.
        shown = [...shown].sort((a, b) => a.component.localeCompare(b.component));
      }
      if (options.json) for (const record of shown) io.out(JSON.stringify(record));
      else if (shown.length > 0) io.out(formatTimeline(shown, { color: env.color }).trimEnd());
    });
}

function eventName(name: string): EventName {
  if (!isEventName(name)) throw new CliError(`--event: unknown event "${name}" (one of ${EVENTS.join(", ")})`, EXIT.USAGE);
  return name;
}

function positiveInt(value: string, option: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`${option}: expected a whole number of at least 1, got ${JSON.stringify(value)}`, EXIT.USAGE);
  return n;
}

/** Parses an ISO time or an age (`90s`, `10m`, `2h`, `1d`) into epoch milliseconds. */
export function parseTime(value: string, option: string, now = Date.now()): number {
  const age = /^(\d+)(s|m|h|d)$/.exec(value);
  if (age) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as "s" | "m" | "h" | "d"];
    return now - Number(age[1]) * unit;
  }
  const time = Date.parse(value);
  if (Number.isNaN(time)) throw new CliError(`${option}: expected an ISO 8601 time or an age like 10m, got ${JSON.stringify(value)}`, EXIT.USAGE);
  return time;
}
