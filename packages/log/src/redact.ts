// Secrets must never reach a log file (docs/ARCHITECTURE.md, "Secrets": never logged). Values are
// redacted by key name, at any depth, before pino sees them.
//
// Why not pino's own `redact` option: its wildcard paths (`*.password`) cost about 22 µs per
// record here, ten times the rest of logging, and reach one level deep only, so
// `req.headers.authorization` would need yet more paths. A walk of the fields that copies only
// what it changes costs well under a microsecond for the small objects logs carry.

/** What a secret's value is replaced by. */
export const REDACTED = "[redacted]";

/**
 * The key names whose values are redacted wherever they appear in a record: any key that ends in
 * password, passphrase, secret, token, apiKey (or api_key, api-key), privateKey (or
 * private_key), authorization or cookie, in any case — so `clientSecret`, `accessToken`,
 * `headers.authorization`, `headers["proxy-authorization"]` and `set-cookie` are all caught.
 */
export const SECRET_KEY_PATTERN = /(?:password|passphrase|secret|token|api[_-]?key|private[_-]?key|authorization|cookie)$/i;

/** How deep a fields object is searched; deeper values are left as they are. */
const MAX_DEPTH = 10;

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Returns `value` with the value of every secret key (see {@link SECRET_KEY_PATTERN}) replaced by
 * `"[redacted]"`, in plain objects and arrays at any depth. Nothing is copied when there is
 * nothing to redact, and the caller's objects are never modified. Class instances (Errors, Dates,
 * Buffers, Maps) are left whole: the logger's error serializer handles errors. Redaction works on
 * keys only, so a secret interpolated into a message string cannot be caught: never do that.
 */
export function redactSecrets<T>(value: T): T {
  return redact(value, 0) as T;
}

function redact(value: unknown, depth: number): unknown {
  if (typeof value !== "object" || value === null || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    const items = value as unknown[];
    let copy: unknown[] | undefined;
    items.forEach((item, index) => {
      const cleaned = redact(item, depth + 1);
      if (cleaned !== item) {
        copy ??= [...items];
        copy[index] = cleaned;
      }
    });
    return copy ?? items;
  }
  if (!isPlainObject(value)) return value;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const item = value[key];
    const cleaned = SECRET_KEY_PATTERN.test(key) ? (item === undefined || item === null ? item : REDACTED) : redact(item, depth + 1);
    if (cleaned !== item) {
      copy ??= Object.assign(Object.create(Object.getPrototypeOf(value) as object | null) as Record<string, unknown>, value);
      copy[key] = cleaned;
    }
  }
  return copy ?? value;
}

/**
 * Redacts, in place, an error already turned into an object by pino's serializer (a fresh
 * object of ours, so changing it is safe): its own secret-named properties, and the data and
 * nested errors (`cause`, `aggregateErrors`, error-valued properties) it carries.
 */
export function redactSerializedError(serialized: Record<string, unknown>, errorProto: object, depth = 0): void {
  if (depth > MAX_DEPTH) return;
  for (const key of Object.keys(serialized)) {
    if (key === "type" || key === "message" || key === "stack") continue;
    const item = serialized[key];
    if (SECRET_KEY_PATTERN.test(key)) {
      serialized[key] = REDACTED;
    } else if (isSerializedError(item, errorProto)) {
      redactSerializedError(item, errorProto, depth + 1);
    } else if (Array.isArray(item)) {
      serialized[key] = item.map((entry: unknown) => {
        if (isSerializedError(entry, errorProto)) {
          redactSerializedError(entry, errorProto, depth + 1);
          return entry;
        }
        return redact(entry, depth + 1);
      });
    } else {
      serialized[key] = redact(item, depth + 1);
    }
  }
}

function isSerializedError(value: unknown, errorProto: object): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && Object.getPrototypeOf(value) === errorProto;
}
