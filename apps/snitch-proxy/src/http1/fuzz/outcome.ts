// What a parser made of a byte stream, in one shape for snitch-proxy's parser and for llhttp, so
// that the two can be compared field by field.

/** One message a parser read in full. */
export interface Message {
  /** Request method, or "" for a response. */
  readonly method: string;
  /** Request target, or "" for a response. */
  readonly target: string;
  /** Response status, or 0 for a request. */
  readonly status: number;
  /** "1.0" or "1.1". */
  readonly version: string;
  /** Header fields: names lower-cased, values trimmed, repeated fields combined, sorted by name. */
  readonly headers: readonly (readonly [string, string])[];
  /** The decoded body, latin1. */
  readonly body: string;
  /** Where the message ends in the input: the next message starts here. */
  readonly end: number;
}

/** Why a parser stopped reading the input. */
export type Stop =
  /** Every byte belongs to a message that was read. */
  | { readonly kind: "clean" }
  /** The input ends inside a message: the parser waits for more. */
  | { readonly kind: "incomplete" }
  /** The parser refused the input. */
  | { readonly kind: "error"; readonly reason: string };

/** The messages read, then why reading stopped. */
export interface Outcome {
  readonly messages: readonly Message[];
  readonly stop: Stop;
}

/**
 * Header fields in the shape compared: names lower-cased, values with SP and HTAB trimmed, the
 * lines of one name combined in order (RFC 9110 §5.3: ", ", and "; " for Cookie, which is what
 * snitch-proxy forwards), and Set-Cookie lines kept apart (joined with "\n" here for comparison).
 */
export function normaliseFields(lines: readonly (readonly [string, string])[]): [string, string][] {
  const fields = new Map<string, string[]>();
  for (const [rawName, rawValue] of lines) {
    const name = rawName.toLowerCase();
    const value = rawValue.replace(/^[ \t]+|[ \t]+$/g, "");
    const list = fields.get(name);
    if (list === undefined) fields.set(name, [value]);
    else list.push(value);
  }
  return [...fields].map(([name, values]): [string, string] => [name, values.join(name === "set-cookie" ? "\n" : name === "cookie" ? "; " : ", ")]).sort(byName);
}

/** Orders fields by name. */
export function byName(a: readonly [string, string], b: readonly [string, string]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}
