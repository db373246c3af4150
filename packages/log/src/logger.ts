// pino-based structured logging with Coyote's record shape: one clock, string levels, a
// per-process sequence number, the component name on every line, and secrets redacted.
import { join } from "node:path";
import { pino } from "pino";
import type { EventName } from "./events.ts";
import { assertEventName } from "./events.ts";
import { redactSecrets, redactSerializedError } from "./redact.ts";

/**
 * Returns the current time in epoch milliseconds with a microsecond fraction, from the clock that
 * every log record uses.
 *
 * `performance.timeOrigin` is the wall-clock time at which this process started and
 * `performance.now()` a monotonic offset from it, so the sum never goes backwards inside a process
 * (unlike `Date.now()` under NTP steps) and still lines up with the records of other processes on
 * the same machine, which is what lets the timeline merge them in their true order. Rounding to
 * whole microseconds keeps the JSON short and the value stable across a parse and a print.
 */
export function clockNow(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000) / 1000;
}

/** The pino log levels a Coyote logger accepts, plus `"silent"` to turn it off. */
export type LogLevel = pino.Level | "silent";

/** How to make a logger with {@link createLogger}. */
export interface LoggerOptions {
  /** The component that logs, such as `"minion"` or `"snitch-proxy"`; written on every record. */
  component: string;
  /**
   * A file to append JSON lines to, usually {@link logFileFor}; its parent folders are created.
   * Writes are synchronous so that a process killed right after logging loses no line.
   */
  file?: string;
  /** The lowest level written; `"info"` when not given. */
  level?: LogLevel;
  /** A stream to write to instead of a file, for tests or an embedding host. Never closed by us. */
  destination?: NodeJS.WritableStream;
  /** Fields written on every record of this logger, such as `{ serverId }`. */
  bindings?: Record<string, unknown>;
}

/**
 * A structured logger of one component. Fields objects are written as JSON fields of the record;
 * the record's own keys (`time`, `level`, `component`, `pid`, `seq`, `msg`, `event`) cannot be
 * overwritten by fields: such a field is renamed with a leading underscore (`_time`), so that a
 * caller's object can neither forge an event nor break the ordering of the timeline.
 */
export interface CoyoteLogger {
  /** The component written on every record of this logger. */
  readonly component: string;
  /**
   * Logs one event of the vocabulary. It is written at level `info`, except `ERROR`, which is
   * written at level `error` and takes its message from `fields.err` when no `msg` is given.
   * An `err` (or `error`) field is serialized with pino's standard error serializer, keeping the
   * chain of `cause`s. Throws when `name` is not in the vocabulary, which only code that escaped
   * the type checker can do.
   */
  event(name: EventName, fields?: Record<string, unknown>, msg?: string): void;
  /** Logs a debug record: a message, or fields and an optional message. */
  debug(fieldsOrMsg: Record<string, unknown> | string, msg?: string): void;
  /** Logs an info record: a message, or fields and an optional message. */
  info(fieldsOrMsg: Record<string, unknown> | string, msg?: string): void;
  /** Logs a warn record: a message, or fields and an optional message. */
  warn(fieldsOrMsg: Record<string, unknown> | string, msg?: string): void;
  /** Logs an error record: a message, or fields and an optional message. */
  error(fieldsOrMsg: Record<string, unknown> | string, msg?: string): void;
  /**
   * Returns a logger that adds `bindings` (such as `{ requestId }` or `{ serviceId }`) to every
   * record and writes to the same destination.
   */
  child(bindings: Record<string, unknown>): CoyoteLogger;
  /** Resolves once every record logged so far has been handed to the operating system. */
  flush(): Promise<void>;
  /**
   * Flushes and closes the log file this logger (or the logger it is a child of) opened; later
   * records are dropped silently rather than thrown, so that a daemon shutting down never crashes
   * on a late log call. Standard error and a caller's `destination` stay open.
   */
  close(): Promise<void>;
}

const RESERVED_KEYS = ["time", "level", "component", "pid", "seq", "msg", "event"] as const;

// One counter for the whole process, shared by every logger in it (several components share a
// process in `coyote up --one-process`), so that it orders all records written by this pid.
let sequence = 0;

// The prototype pino's error serializer gives its output, to recognize serialized errors.
const SERIALIZED_ERROR_PROTO = Object.getPrototypeOf(pino.stdSerializers.errWithCause(new Error("probe"))) as object;

/**
 * Serializes an error with pino's standard serializer, keeping the chain of causes; keeps a
 * `cause` that is not an Error too (the serializer drops it), and redacts secrets the error carries.
 */
function serializeError(value: unknown): unknown {
  const serialized: unknown = pino.stdSerializers.errWithCause(value as Error);
  if (serialized === value || !isRecord(serialized)) return redactSecrets(value);
  if (value instanceof Error && value.cause !== undefined && serialized.cause === undefined) {
    serialized.cause = value.cause;
  }
  redactSerializedError(serialized, SERIALIZED_ERROR_PROTO);
  return serialized;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Makes a caller's fields safe to write: secrets redacted (see {@link redactSecrets}) and the
 * record's own keys renamed. Copies only when something changes.
 */
function sanitize(fields: Record<string, unknown>): Record<string, unknown> {
  const redacted = redactSecrets(fields);
  if (!RESERVED_KEYS.some((key) => Object.hasOwn(redacted, key))) return redacted;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(redacted)) {
    copy[(RESERVED_KEYS as readonly string[]).includes(key) ? `_${key}` : key] = value;
  }
  return copy;
}

interface Shared {
  closed: boolean;
  closing: Promise<void> | undefined;
  close: () => Promise<void>;
}

/**
 * Creates the logger of one component. It writes one JSON object per line to `file` (appending),
 * else to `destination`, else to standard error — never to standard output, which belongs to
 * the CLI's own output. Every record carries `time` (see {@link clockNow}), `level` as a label,
 * `component`, `pid`, `seq` (a per-process counter that breaks ties between equal times), `msg`,
 * and `event` for events. Secrets in fields, bindings and errors are redacted by key name
 * (see {@link redactSecrets}).
 */
export function createLogger(options: LoggerOptions): CoyoteLogger {
  if (options.component === "") throw new Error("creating logger: component must not be empty");
  let destination: pino.DestinationStream;
  let close: () => Promise<void> = async () => {
    // A caller's stream and standard error are not ours to close.
  };
  if (options.file !== undefined) {
    const file = options.file;
    // Synchronous appends cost a write(2) per record (measured in the tests: tens of thousands of
    // records per second) and in exchange a record is in the kernel once the call returns, so a
    // crash or SIGKILL right after logging loses nothing — what a post-mortem timeline needs.
    const boom = pino.destination({ dest: file, sync: true, mkdir: true, append: true });
    reportWriteErrors(boom, file);
    destination = boom;
    close = () =>
      new Promise<void>((resolve) => {
        // A failing close (already reported by reportWriteErrors) must not leave shutdown hanging.
        boom.once("close", () => {
          resolve();
        });
        boom.once("error", () => {
          resolve();
        });
        boom.end();
      });
  } else if (options.destination !== undefined) {
    destination = options.destination;
  } else {
    const boom = pino.destination({ fd: 2, sync: true });
    reportWriteErrors(boom, "standard error");
    destination = boom;
  }

  const root = pino(
    {
      level: options.level ?? "info",
      base: { pid: process.pid, component: options.component },
      timestamp: () => `,"time":${clockNow()}`,
      formatters: { level: (label) => ({ level: label }) },
      mixin: () => ({ seq: ++sequence }),
      serializers: { err: serializeError, error: serializeError },
    },
    destination,
  );
  const shared: Shared = {
    closed: false,
    closing: undefined,
    // Every caller of close(), the first or a concurrent later one, waits for the same closing.
    close: () => {
      shared.closed = true;
      shared.closing ??= close();
      return shared.closing;
    },
  };
  // Bindings go through child() rather than pino's `base`, so that they are redacted and
  // serialized like fields are.
  const bound = options.bindings === undefined ? root : root.child(sanitize(options.bindings));
  return wrap(bound, options.component, shared);
}

/**
 * A failing disk must not crash a daemon through an unhandled `error` event; the first failure
 * is told on standard error so that it is not silent either.
 */
function reportWriteErrors(stream: NodeJS.EventEmitter, what: string): void {
  let told = false;
  stream.on("error", (err: unknown) => {
    if (told) return;
    told = true;
    const message = err instanceof Error ? err.message : String(err);
    try {
      process.stderr.write(`coyote log: writing ${what}: ${message}\n`);
    } catch {
      // Nowhere left to tell.
    }
  });
}

function wrap(logger: pino.Logger, component: string, shared: Shared): CoyoteLogger {
  const passThrough =
    (level: "debug" | "info" | "warn" | "error") =>
    (fieldsOrMsg: Record<string, unknown> | string, msg?: string): void => {
      if (shared.closed) return;
      if (typeof fieldsOrMsg === "string") logger[level]({}, fieldsOrMsg);
      else logger[level](sanitize(fieldsOrMsg), msg ?? "");
    };
  return {
    component,
    event(name, fields = {}, msg) {
      assertEventName(name);
      if (shared.closed) return;
      const record = { event: name, ...sanitize(fields) };
      if (name === "ERROR") {
        const err: unknown = fields.err ?? fields.error;
        logger.error(record, msg ?? (err instanceof Error ? err.message : ""));
      } else {
        logger.info(record, msg ?? "");
      }
    },
    debug: passThrough("debug"),
    info: passThrough("info"),
    warn: passThrough("warn"),
    error: passThrough("error"),
    child(bindings) {
      return wrap(logger.child(sanitize(bindings)), component, shared);
    },
    flush() {
      if (shared.closed) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        logger.flush((err?: Error) => {
          if (err) reject(err);
          else resolve();
        });
      });
    },
    close() {
      return shared.close();
    },
  };
}

/**
 * Returns where a component's log file lives by convention: `<stateDir>/logs/<component>.log`,
 * the folder that `coyote logs --timeline` reads. Throws for a component name that is not a plain
 * file name, since it would place the log outside that folder.
 */
export function logFileFor(stateDir: string, component: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(component)) {
    throw new Error(`log file for component "${component}": the name must be letters, digits, ".", "_" or "-"`);
  }
  return join(stateDir, "logs", `${component}.log`);
}
