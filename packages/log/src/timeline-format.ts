// Printing a timeline for people: aligned columns, optional colours, control characters escaped.
import { EVENTS } from "./events.ts";
import type { LogRecord } from "./log-file.ts";

/** How {@link formatTimeline} prints. */
export interface FormatOptions {
  /** Color the columns with ANSI escapes, for a terminal. */
  color?: boolean;
}

const EVENT_WIDTH = Math.max(...EVENTS.map((name) => name.length));
const MIN_COMPONENT_WIDTH = 15;
const SHOWN_APART = new Set(["time", "level", "component", "pid", "seq", "msg", "event", "requestId", "serviceId"]);

/**
 * Returns the time of a record as ISO 8601 in UTC with microseconds,
 * such as `2026-11-22T20:15:38.123456Z`.
 */
export function formatTime(time: number): string {
  const micros = Math.round(time * 1000);
  const millis = Math.floor(micros / 1000);
  const fraction = String(micros - millis * 1000).padStart(3, "0");
  return new Date(millis).toISOString().replace(/Z$/, `${fraction}Z`);
}

// Log values can come from the outside (a Host header, a peer's message): control characters are
// escaped so a record stays on one line and cannot send escape codes to the reader's terminal.
function escapeControls(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    if (c === "\t") return "\\t";
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
  });
}

function isErrorRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && typeof (value as Record<string, unknown>).message === "string";
}

/** `TypeError: outer; cause: Error: inner`, following serialized causes a few levels deep. */
function describeError(value: Record<string, unknown>, depth = 0): string {
  const type = typeof value.type === "string" ? `${value.type}: ` : "";
  const text = `${type}${String(value.message)}`;
  const cause = value.cause;
  if (depth >= 4 || cause === undefined) return text;
  return `${text}; cause: ${isErrorRecord(cause) ? describeError(cause, depth + 1) : JSON.stringify(cause)}`;
}

function formatValue(key: string, value: unknown): string {
  // JSON.stringify escapes C0 controls but not DEL and C1 (U+009B starts an escape sequence in
  // some terminals), so everything goes through escapeControls too.
  return escapeControls(formatRawValue(key, value));
}

function formatRawValue(key: string, value: unknown): string {
  if ((key === "err" || key === "error") && isErrorRecord(value)) {
    // The stack would drown the line; the JSON records keep it whole.
    return JSON.stringify(describeError(value));
  }
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value === undefined) return "undefined";
  return JSON.stringify(value);
}

const ANSI = { dim: "2", red: "31", green: "32", yellow: "33", blue: "34", magenta: "35", cyan: "36" } as const;
const COMPONENT_COLORS = [ANSI.cyan, ANSI.magenta, ANSI.blue, ANSI.green, ANSI.yellow] as const;

function paint(color: boolean, code: string, text: string): string {
  return color ? `\u001b[${code}m${text}\u001b[0m` : text;
}

function componentColor(component: string): string {
  let hash = 0;
  for (let i = 0; i < component.length; i++) hash = (hash * 31 + component.charCodeAt(i)) >>> 0;
  return COMPONENT_COLORS[hash % COMPONENT_COLORS.length] ?? ANSI.cyan;
}

function levelColor(level: string): string {
  if (level === "error" || level === "fatal") return ANSI.red;
  if (level === "warn") return ANSI.yellow;
  if (level === "debug" || level === "trace") return ANSI.dim;
  return ANSI.green;
}

/**
 * Prints records as a human-readable timeline, one line per record in the given order, lines
 * joined by `\n` without a trailing one:
 *
 * `2026-11-22T20:15:38.123456Z  minion          RECONCILE_DONE    svc=alice-blog req=abc123  converged in 12 ms  ms=12`
 *
 * The columns are the time (UTC, microseconds), the component (padded to the longest one shown,
 * at least 15), the event (padded to the longest event name; a record that is not an event shows
 * its level in lower case there), then the service and request ids, the message, and every
 * other field as compact `key=value`. Errors show as their type and message only. Control
 * characters are escaped, so each record stays on its line.
 */
export function formatTimeline(records: readonly LogRecord[], options: FormatOptions = {}): string {
  const color = options.color === true;
  const componentWidth = Math.max(MIN_COMPONENT_WIDTH, ...records.map((r) => escapeControls(r.component).length));
  return records
    .map((record) => {
      const component = escapeControls(record.component);
      const columns = [
        paint(color, ANSI.dim, formatTime(record.time)),
        "  ",
        paint(color, componentColor(component), component.padEnd(componentWidth)),
        " ",
        paint(color, levelColor(record.level), (record.event ?? escapeControls(record.level)).padEnd(EVENT_WIDTH)),
        " ",
      ];
      const keys: string[] = [];
      if (record.serviceId !== undefined) keys.push(`svc=${formatValue("serviceId", record.serviceId)}`);
      if (record.requestId !== undefined) keys.push(`req=${formatValue("requestId", record.requestId)}`);
      const tail: string[] = [];
      if (keys.length > 0) tail.push(keys.join(" "));
      if (typeof record.msg === "string" && record.msg !== "") tail.push(escapeControls(record.msg));
      const rest = Object.entries(record)
        .filter(([key]) => !SHOWN_APART.has(key))
        .map(([key, value]) => `${escapeControls(key)}=${formatValue(key, value)}`);
      if (rest.length > 0) tail.push(paint(color, ANSI.dim, rest.join(" ")));
      return (columns.join("") + tail.join("  ")).trimEnd();
    })
    .join("\n");
}
