// Reading one component's log file into records, tolerating what a crash leaves behind.
import { createReadStream } from "node:fs";
import { readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { pino } from "pino";
import type { EventName } from "./events.ts";
import { isEventName } from "./events.ts";

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

/** A record with its line number in its file. */
export interface Numbered {
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

/**
 * Reads the records of one log file with their line numbers; problems go to `warnings` (see
 * {@link readLogFile}).
 */
export async function* readNumbered(path: string, warnings: string[]): AsyncGenerator<Numbered> {
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
