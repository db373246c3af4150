// Coded errors: every package and app keeps one catalogue of the errors it throws (a stable code
// and a default message each, and the HTTP status where an API answers with it), and makes its
// error class from that catalogue here, so that every component's errors look alike to a program
// (`error.code`), to an operator (a lowercase message with a context prefix) and to the log (the
// `cause` kept). See docs/CONTRIBUTING.md, "Conventions".

/**
 * One entry of an error catalogue: the default message, or the default message with the HTTP
 * status that an API answers the error with.
 */
export type ErrorEntry = string | { readonly message: string; readonly status: number };

/** An error catalogue: stable codes (`MINION_ERR_PLUGIN_INVALID`) mapped to their entries. */
export type ErrorCatalogue = Readonly<Record<string, ErrorEntry>>;

/** The type of `status`: a number when every entry has one, otherwise possibly undefined. */
export type ErrorStatus<T extends ErrorCatalogue> = T[keyof T] extends { readonly status: number } ? number : number | undefined;

/** What a coded error is made with besides its code and message. */
export interface CodedErrorOptions {
  /** The error that led to this one, kept for the log. */
  readonly cause?: unknown;
}

/** An error made by a class from {@link codedErrors}. */
export interface CodedError<T extends ErrorCatalogue> extends Error {
  /** The stable code, one of the catalogue's keys: what programs and tests choose by. */
  readonly code: keyof T & string;
  /** The HTTP status the catalogue gives the code, undefined for a code without one. */
  readonly status: ErrorStatus<T>;
}

/** The class {@link codedErrors} makes: `new` it, extend it, test errors with `instanceof`. */
export interface CodedErrorClass<T extends ErrorCatalogue> {
  /**
   * Makes an error.
   * @param code the catalogue code.
   * @param message a lowercase message with a context prefix (`loading plugin dns: ...`); the
   *   catalogue's default message when left out.
   * @param options the cause.
   */
  new (code: keyof T & string, message?: string, options?: CodedErrorOptions): CodedError<T>;
  /** The catalogue the class was made from. */
  readonly catalogue: T;
}

const CODE = /^[A-Z][A-Z0-9_]*$/;

/** Checks a catalogue once, when its class is made: a bad catalogue is a programming error. */
function checkCatalogue(name: string, catalogue: ErrorCatalogue): void {
  for (const [code, entry] of Object.entries(catalogue)) {
    const message = typeof entry === "string" ? entry : entry.message;
    if (!CODE.test(code)) throw new TypeError(`error catalogue ${name}: code ${code} is not UPPER_SNAKE_CASE`);
    if (message.length === 0 || message[0] !== message[0]?.toLowerCase()) {
      throw new TypeError(`error catalogue ${name}: the message of ${code} must be non-empty lowercase text`);
    }
    if (typeof entry !== "string" && !(Number.isInteger(entry.status) && entry.status >= 400 && entry.status <= 599)) {
      throw new TypeError(`error catalogue ${name}: the status of ${code} must be an HTTP error status (400-599)`);
    }
  }
}

/**
 * Makes the error class of one catalogue, in the spirit of fastify's `createError`, but one class
 * for a whole catalogue: `instanceof` tells a component's errors apart from everyone else's and
 * `code` tells them apart from each other, typed as the catalogue's keys.
 * @param name the class's `name`, shown in stack traces (`MinionError`).
 * @param catalogue codes with their default lowercase messages (and HTTP status, where it matters).
 * @returns a class whose errors carry `code`, `status` and `cause`.
 * @throws TypeError when a code is not UPPER_SNAKE_CASE, a message is not lowercase, or a status
 *   is not an HTTP error status.
 * @example
 * ```ts
 * export const MINION_ERRORS = { MINION_ERR_PLUGIN_INVALID: "a plugin is not a valid actuator" } as const;
 * export class MinionError extends codedErrors("MinionError", MINION_ERRORS) {}
 * throw new MinionError("MINION_ERR_PLUGIN_INVALID", `loading plugin dns: it exports no createActuator`);
 * ```
 */
export function codedErrors<const T extends ErrorCatalogue>(name: string, catalogue: T): CodedErrorClass<T> {
  checkCatalogue(name, catalogue);
  const defaultMessage = (code: string): string => {
    const entry = catalogue[code];
    return entry === undefined ? code : typeof entry === "string" ? entry : entry.message;
  };
  class Coded extends Error {
    static readonly catalogue: T = catalogue;
    readonly code: keyof T & string;

    constructor(code: keyof T & string, message?: string, options?: CodedErrorOptions) {
      // A cause that is not there is not kept as an own `cause: undefined`.
      super(message ?? defaultMessage(code), options?.cause === undefined ? undefined : { cause: options.cause });
      this.name = name;
      this.code = code;
    }

    // A getter, not a field: the status follows from the code, and logs show the code alone.
    get status(): ErrorStatus<T> {
      const entry = catalogue[this.code];
      return (typeof entry === "object" ? entry.status : undefined) as ErrorStatus<T>;
    }
  }
  return Coded;
}
