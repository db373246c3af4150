// The timeline: read the log files of every component and tell one ordered story.
import { createReadStream } from "node:fs";
import { readdir } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { pino } from "pino";
import type { EventName } from "./events.ts";
import { EVENTS, isEventName } from "./events.ts";

/**
 * One record of a log file, as written by a Coyote logger. Fields beyond the named ones are kept
 * as they were logged.
 */
export interface LogRecord {
  /** Epoch milliseconds with a microsecond fraction, from the shared clock. */
  time: number;
  /** The level label, such as `"info"`. */
  level: string;
  /** The component that wrote the record. */
  component: string;
  /** The process that wrote the record. */
  pid: number;
  /** The writing process's sequence number, which orders records of equal time. */
  seq: number;
  /** The human-readable message. */
  msg?: string;
  /** The event name, for records logged with `event()`. */
  event?: EventName;
  /** The request this record belongs to, when it belongs to one. */
  requestId?: string;
  /** The hosted service this record is about, when it is about one. */
  serviceId?: string;
  [key: string]: unknown;
}

/** Which records of a timeline to keep; every given criterion must match. */
export interface TimelineFilter {
  /** Keep records at or after this time (epoch milliseconds). */
  since?: number;
  /** Keep records at or before this time (epoch milliseconds). */
  until?: number;
  /** Keep only the records of this request. */
  requestId?: string;
  /** Keep only the records about this service. */
  serviceId?: string;
  /** Keep only the records of this component. */
  component?: string;
  /** Keep only records of these events (so never plain, event-less records). */
  events?: readonly EventName[];
}

/** The result of {@link mergeTimeline}: the ordered records and what could not be read. */
export interface Timeline {
  /** The records of every file, ordered by time, then component, then pid, then seq. */
  records: LogRecord[];
  /** One line per problem, such as `minion.log:42: not JSON`, for the reader to see. */
  warnings: string[];
}

interface Numbered {
  record: LogRecord;
  line: number;
}

/**
 * Reads the records of one log file in file order.
 *
 * Bad input is reported, never thrown, because a timeline is most needed after a crash, which
 * is exactly when a file ends in a torn line: lines that are not JSON, not an object, or lack a
 * numeric `time` are skipped, and a sentence naming the file and line is pushed to `warnings`
 * when that array is given (so is a file that cannot be opened). Records from a plain pino logger
 * are accepted too: a numeric level becomes its label, and a missing component is taken from the
 * file name (`minion.log.1` → `minion`). An `event` outside the vocabulary is moved to
 * `unknownEvent` so that `event` always holds an {@link EventName}.
 */
export async function* readLogFile(path: string, warnings?: string[]): AsyncIterable<LogRecord> {
  for await (const { record } of readNumbered(path, warnings ?? [])) yield record;
}

async function* readNumbered(path: string, warnings: string[]): AsyncGenerator<Numbered> {
  const fallbackComponent = basename(path).replace(/\.log(\.\d+)?$/, "");
  let unknownEventTold = false;
  let lineNumber = 0;
  const parse = (text: string, torn: boolean): Numbered | undefined => {
    lineNumber += 1;
    const line = text.endsWith("\r") ? text.slice(0, -1) : text;
    if (line.trim() === "") return undefined;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      const problem = torn ? `torn last line (${line.length} characters), left by an interrupted write` : "not JSON";
      warnings.push(`${path}:${lineNumber}: ${problem}`);
      return undefined;
    }
    const record = toRecord(value, fallbackComponent);
    if (typeof record === "string") {
      warnings.push(`${path}:${lineNumber}: ${record}`);
      return undefined;
    }
    if (record.unknownEvent !== undefined && !unknownEventTold) {
      unknownEventTold = true;
      warnings.push(`${path}:${lineNumber}: event ${JSON.stringify(record.unknownEvent)} is not in the vocabulary (kept as unknownEvent)`);
    }
    return { record, line: lineNumber };
  };

  const stream = createReadStream(path, { encoding: "utf8" });
  let rest = "";
  try {
    for await (const chunk of stream) {
      const lines = (rest + (chunk as string)).split("\n");
      rest = lines.pop() ?? "";
      for (const text of lines) {
        const parsed = parse(text, false);
        if (parsed) yield parsed;
      }
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    warnings.push(`${path}: cannot read: ${message}`);
    return;
  } finally {
    stream.destroy();
  }
  // A last line without its newline is what a crash in the middle of a write leaves; when it
  // still parses, the record was whole and only the newline was lost.
  const parsed = parse(rest, true);
  if (parsed) yield parsed;
}

/** Turns a parsed line into a record, or returns why it cannot be one. */
function toRecord(value: unknown, fallbackComponent: string): LogRecord | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not a JSON object";
  const raw = value as Record<string, unknown>;
  let time = raw.time;
  if (typeof time === "string") time = Date.parse(time);
  if (typeof time !== "number" || !Number.isFinite(time)) return "no numeric time";
  const level =
    typeof raw.level === "string"
      ? raw.level
      : typeof raw.level === "number"
        ? (pino.levels.labels[raw.level] ?? String(raw.level))
        : "info";
  const record: LogRecord = {
    ...raw,
    time,
    level,
    component: typeof raw.component === "string" ? raw.component : fallbackComponent,
    pid: typeof raw.pid === "number" ? raw.pid : 0,
    seq: typeof raw.seq === "number" ? raw.seq : 0,
  };
  if (raw.event !== undefined && !isEventName(raw.event)) {
    delete record.event;
    record.unknownEvent = raw.event;
  }
  return record;
}

/** Orders two records by time, then component, then pid, then seq. */
export function compareRecords(a: LogRecord, b: LogRecord): number {
  if (a.time !== b.time) return a.time < b.time ? -1 : 1;
  // Plain code-unit comparison rather than localeCompare, so the order is the same everywhere.
  if (a.component !== b.component) return a.component < b.component ? -1 : 1;
  if (a.pid !== b.pid) return a.pid - b.pid;
  return a.seq - b.seq;
}

function matcher(filter: TimelineFilter): (record: LogRecord) => boolean {
  const events = filter.events === undefined ? undefined : new Set<string>(filter.events);
  return (record) =>
    (filter.since === undefined || record.time >= filter.since) &&
    (filter.until === undefined || record.time <= filter.until) &&
    (filter.requestId === undefined || record.requestId === filter.requestId) &&
    (filter.serviceId === undefined || record.serviceId === filter.serviceId) &&
    (filter.component === undefined || record.component === filter.component) &&
    (events === undefined || (record.event !== undefined && events.has(record.event)));
}

interface HeapItem {
  record: LogRecord;
  source: number;
}

/** A binary min-heap over the head record of every file, ties going to the earlier file. */
class Heap {
  private readonly items: HeapItem[] = [];

  get size(): number {
    return this.items.length;
  }

  push(item: HeapItem): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): HeapItem | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < items.length && this.less(left, smallest)) smallest = left;
      if (right < items.length && this.less(right, smallest)) smallest = right;
      if (smallest === i) break;
      this.swap(i, smallest);
      i = smallest;
    }
    return top;
  }

  private less(i: number, j: number): boolean {
    const a = this.items[i];
    const b = this.items[j];
    if (a === undefined || b === undefined) return false;
    const order = compareRecords(a.record, b.record);
    return order < 0 || (order === 0 && a.source < b.source);
  }

  private swap(i: number, j: number): void {
    const a = this.items[i];
    const b = this.items[j];
    if (a === undefined || b === undefined) return;
    this.items[i] = b;
    this.items[j] = a;
  }
}

/**
 * Reads the log files of every component and returns their records as one story, ordered by
 * time, then component, then pid, then seq, keeping only those that match `filter`.
 *
 * Each file is already in order (one process's clock never goes back), so this is a k-way merge
 * that holds one record per file in a heap. Should a file turn out to be out of order — two
 * processes appending to one file, or a file edited by hand — a warning says so and the merged
 * output is sorted at the end, which is cheap on input that is almost in order. Unreadable files
 * and lines become warnings (see {@link readLogFile}); the same path given twice is read once.
 */
export async function mergeTimeline(paths: readonly string[], filter: TimelineFilter = {}): Promise<Timeline> {
  const warnings: string[] = [];
  const matches = matcher(filter);
  const unique = [...new Map(paths.map((path) => [resolve(path), path])).values()];
  const sources = unique.map((path) => readNumbered(path, warnings));
  const previous: (LogRecord | undefined)[] = unique.map(() => undefined);
  // An object rather than a `let`, because the closure below is what sets it.
  const order = { broken: false };

  // Pulls the next matching record of one file, noting when it goes back in time.
  const next = async (source: number): Promise<HeapItem | undefined> => {
    const iterator = sources[source];
    if (iterator === undefined) return undefined;
    for (;;) {
      const step = await iterator.next();
      if (step.done === true) return undefined;
      const { record, line } = step.value;
      if (!matches(record)) continue;
      const before = previous[source];
      if (before !== undefined && compareRecords(before, record) > 0 && !order.broken) {
        order.broken = true;
        warnings.push(`${unique[source] ?? "?"}:${line}: record out of order; the timeline was sorted instead of merged`);
      }
      previous[source] = record;
      return { record, source };
    }
  };

  const heap = new Heap();
  const heads = await Promise.all(sources.map((_, source) => next(source)));
  for (const head of heads) if (head !== undefined) heap.push(head);

  const records: LogRecord[] = [];
  for (let item = heap.pop(); item !== undefined; item = heap.pop()) {
    records.push(item.record);
    const following = await next(item.source);
    if (following !== undefined) heap.push(following);
  }
  // Array.prototype.sort is stable, so records that compare equal keep their merged order.
  if (order.broken) records.sort(compareRecords);
  return { records, warnings };
}

/**
 * Lists the log files in a folder, such as `$COYOTE_STATE/logs/`: every `*.log` and rotated
 * `*.log.N`, as full paths in name order. A folder that does not exist yet (nothing has logged)
 * gives an empty list.
 */
export async function logFilesIn(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (err instanceof Error && (err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return entries
    .filter((entry) => entry.isFile() && /\.log(\.\d+)?$/.test(entry.name))
    .map((entry) => entry.name)
    .sort()
    .map((name) => join(dir, name));
}

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
