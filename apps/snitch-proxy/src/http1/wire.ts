// HTTP/1.1 on the wire (RFC 9112), as snitch-proxy speaks it on both sides: parsing request and
// response heads strictly (anything a peer might read differently is refused, the defence against
// request smuggling), decoding chunked bodies, and writing heads and chunks.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

/** Why a message head was refused: the status for the client, and what was wrong, for the log. */
export class WireError extends Error {
  readonly status: 400 | 431 | 505;
  constructor(status: 400 | 431 | 505, message: string) {
    super(message);
    this.name = "WireError";
    this.status = status;
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Whether a request target has a space or a control character. */
function badTarget(target: string): boolean {
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c <= 32 || c === 127) return true;
  }
  return false;
}
const DIGITS = /^\d{1,15}$/;

/**
 * The object parsed headers live in: no prototype (so a header named `constructor` or `__proto__`
 * is a header like any other), yet built by a constructor, which keeps V8's fast properties (an
 * `Object.create(null)` object starts as a slow dictionary, measured 4 µs per head instead of 1).
 */
const HeaderBag = function HeaderBag() {} as unknown as new () => IncomingHttpHeaders;
HeaderBag.prototype = Object.create(null) as object;

/** A parsed request head. */
export interface RequestHead {
  readonly method: string;
  readonly target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: 0 | 1;
  readonly headers: IncomingHttpHeaders;
}

/** A parsed response head. */
export interface ResponseHead {
  readonly status: number;
  readonly minor: 0 | 1;
  readonly headers: IncomingHttpHeaders;
}

const UPSTREAM = "the upstream's answer: ";

/** Refuses a malformed head (400); `whose` prefixes the message. */
function malformed(whose: string, message: string): never {
  throw new WireError(400, `${whose}${message}`);
}

/** 1 for the characters of a token (RFC 9110 §5.6.2), by character code below 256. */
const TOKEN_CHARS = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN_CHARS[c.charCodeAt(0)] = 1;

/**
 * Reads the header lines of a head (`text` from `from`, lines ending in CRLF) into `headers`, with
 * lower-case names. Repeated fields are joined with ", " (RFC 9110 §5.3), cookies with "; ", and
 * Set-Cookie kept as a list; a repeated Host, or Content-Length with another value, is refused.
 * One pass over the characters: this runs for every request and every response.
 */
function readFields(text: string, from: number, headers: IncomingHttpHeaders, whose: string): void {

  const length = text.length;
  let pos = from;
  while (pos < length) {
    let eol = text.indexOf("\r\n", pos);
    if (eol < 0) eol = length;
    let i = pos;
    while (i < eol && TOKEN_CHARS[text.charCodeAt(i)] === 1) i++;
    if (i === eol || text.charCodeAt(i) !== 58 /* : */) {
      const first = text.charCodeAt(pos);
      if (first === 32 || first === 9) malformed(whose, "a folded header line");
      if (i === pos || i === eol) malformed(whose, "a header line without a name and a colon");
      malformed(whose, `the header name ${JSON.stringify(text.slice(pos, Math.min(eol, pos + 40)))} is not a token`);
    }
    if (i === pos) malformed(whose, "a header line without a name");
    const key = text.slice(pos, i).toLowerCase();
    let start = i + 1;
    let end = eol;
    while (start < end && (text.charCodeAt(start) === 32 || text.charCodeAt(start) === 9)) start++;
    while (end > start && (text.charCodeAt(end - 1) === 32 || text.charCodeAt(end - 1) === 9)) end--;
    // RFC 9110 trims a tab after a value as it trims a space, but llhttp (node:http, so many
    // backends) does not for Transfer-Encoding: "chunked<TAB>" is chunked here and an unknown
    // coding there. A framing header the two would read differently is refused.
    if (end < eol && key === "transfer-encoding" && text.slice(end, eol).includes("\t")) malformed(whose, "a Transfer-Encoding value that ends in a tab");
    for (let k = start; k < end; k++) {
      const c = text.charCodeAt(k);
      if ((c < 32 && c !== 9) || c === 127) malformed(whose, `the ${key} header has a control character`);
    }
    const value = text.slice(start, end);
    pos = eol + 2;
    const prior = headers[key];
    if (prior === undefined) {
      headers[key] = key === "set-cookie" ? [value] : value;
    } else if (key === "set-cookie") {
      (prior as string[]).push(value);
    } else if (key === "host" || key === "content-length") {
      if (key === "content-length" && prior === value) continue;
      malformed(whose, `two ${key} headers`);
    } else {
      headers[key] = `${prior as string}${key === "cookie" ? "; " : ", "}${value}`;
    }
  }
}

/**
 * Parses a request head: the text before the blank line, decoded as latin1.
 * @throws WireError (400 malformed, 505 another HTTP version).
 */
export function parseRequestHead(text: string): RequestHead {
  const lineEnd = text.indexOf("\r\n");
  const requestLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
  const first = requestLine.indexOf(" ");
  const second = requestLine.indexOf(" ", first + 1);
  if (first <= 0 || second < 0 || requestLine.indexOf(" ", second + 1) >= 0) malformed("", "the request line is not METHOD TARGET VERSION");
  const method = requestLine.slice(0, first);
  const target = requestLine.slice(first + 1, second);
  const version = requestLine.slice(second + 1);
  if (!TOKEN.test(method)) malformed("", "the method is not a token");
  let minor: 0 | 1;
  if (version === "HTTP/1.1") minor = 1;
  else if (version === "HTTP/1.0") minor = 0;
  else if (/^HTTP\/\d\.\d$/.test(version)) throw new WireError(505, `${version} is not spoken here`);
  else return malformed("", "the request line has no HTTP version");
  if (target.length === 0 || badTarget(target)) malformed("", "the request target has a space or a control character");
  if (target.charCodeAt(0) !== 47 /* "/" */ && !(target === "*" && method === "OPTIONS")) malformed("", "the request target does not start with /");
  const headers = new HeaderBag();
  if (lineEnd >= 0) readFields(text, lineEnd + 2, headers, "");
  return { method, target, minor, headers };
}

/**
 * Parses a response head from an upstream.
 * @throws WireError (400) when it is not an HTTP/1.x response.
 */
export function parseResponseHead(text: string): ResponseHead {
  const lineEnd = text.indexOf("\r\n");
  const statusLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
  let minor: 0 | 1;
  if (statusLine.startsWith("HTTP/1.1 ")) minor = 1;
  else if (statusLine.startsWith("HTTP/1.0 ")) minor = 0;
  else return malformed(UPSTREAM, "no HTTP/1.x status line");
  const code = statusLine.slice(9, 12);
  if (!/^[1-9]\d\d$/.test(code) || (statusLine.length > 12 && statusLine.charCodeAt(12) !== 32)) malformed(UPSTREAM, "no three-digit status");
  // The reason phrase is not passed on, but a control character in it (a bare CR above all, which
  // ends the line for some parsers and hides the next field) means the head cannot be trusted.
  for (let k = 13; k < statusLine.length; k++) {
    const c = statusLine.charCodeAt(k);
    if ((c < 32 && c !== 9) || c === 127) malformed(UPSTREAM, "a control character in the status line");
  }
  const headers = new HeaderBag();
  if (lineEnd >= 0) readFields(text, lineEnd + 2, headers, UPSTREAM);
  return { status: Number(code), minor, headers };
}

/** How a message's body is delimited. */
export type Framing = { readonly kind: "none" } | { readonly kind: "length"; readonly length: number } | { readonly kind: "chunked" } | { readonly kind: "close" };

/** Leading and trailing optional whitespace (RFC 9110 §5.6.3: SP and HTAB only). */
const OWS_EDGES = /^[ \t]+|[ \t]+$/g;

const NONE: Framing = { kind: "none" };
const CHUNKED: Framing = { kind: "chunked" };
const CLOSE: Framing = { kind: "close" };

/** Whether a Transfer-Encoding value is exactly `chunked` (the only coding a request may use here). */
const isChunked = (value: string) => value.length === 7 && value.toLowerCase() === "chunked";

/**
 * How a request's body is delimited (RFC 9112 §6.3): Transfer-Encoding `chunked`, or a
 * Content-Length of digits, or none. Both together, another coding, or a malformed length is refused.
 */
export function requestFraming(headers: IncomingHttpHeaders): Framing {
  const te = headers["transfer-encoding"];
  const cl = headers["content-length"];
  if (te !== undefined) {
    if (cl !== undefined) throw new WireError(400, "both Transfer-Encoding and Content-Length");
    if (!isChunked(te)) throw new WireError(400, `the transfer coding ${JSON.stringify(te.slice(0, 40))} is not chunked`);
    return CHUNKED;
  }
  if (cl === undefined) return NONE;
  if (!DIGITS.test(cl)) throw new WireError(400, "a Content-Length that is not a number");
  const length = Number(cl);
  return length === 0 ? NONE : { kind: "length", length };
}

/**
 * How an upstream response's body is delimited: none for HEAD, 1xx, 204 and 304; chunked when
 * chunked is the last coding; a Content-Length; otherwise until the upstream closes.
 */
export function responseFraming(method: string, head: ResponseHead): Framing {
  const cl = head.headers["content-length"];
  // Checked even where it does not frame the body (HEAD, 204, 304, next to a coding): it is passed
  // on to the client, and a parser that reads it anyway must not read something else.
  if (cl !== undefined && !DIGITS.test(cl)) throw new WireError(400, "the upstream's answer has a Content-Length that is not a number");
  if (method === "HEAD" || head.status < 200 || head.status === 204 || head.status === 304) return NONE;
  const te = head.headers["transfer-encoding"];
  if (te !== undefined) {
    // A length next to a coding is ignored (RFC 9112 §6.3); the client gets the decoded body.
    delete head.headers["content-length"];
    // Only SP and HTAB are whitespace here (RFC 9110 OWS): String.trim would also drop a
    // no-break space (0xA0 in latin1), and "gzip,<NBSP>chunked" is not chunked to llhttp.
    const last = te.slice(te.lastIndexOf(",") + 1).replace(OWS_EDGES, "");
    return isChunked(last) ? CHUNKED : CLOSE;
  }
  if (cl === undefined) return CLOSE;
  return { kind: "length", length: Number(cl) };
}

const enum Chunk {
  Size,
  Extension,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  Trailer,
  TrailerLf,
  Done,
}

/** Where a trailer line is: at its start (an empty line ends the trailers), in its name, in its value. */
const enum Trailer {
  Start,
  Name,
  Value,
}

/**
 * Decodes a chunked body as it arrives. `push` hands each piece of data to `onData` and returns
 * how many bytes of its input belonged to the body: all of them until the last chunk and its
 * trailers end, then the rest is the next message's.
 */
export class ChunkedDecoder {
  #state = Chunk.Size;
  #size = 0;
  #digits = 0;
  #lineBytes = 0;
  #trailerBytes = 0;
  #trailerPart = Trailer.Start;
  readonly #onData: (chunk: Buffer) => void;
  readonly #maxTrailerBytes: number;

  constructor(onData: (chunk: Buffer) => void, maxTrailerBytes = 16_384) {
    this.#onData = onData;
    this.#maxTrailerBytes = maxTrailerBytes;
  }

  /** Whether the last chunk and the trailers have been read. */
  get done(): boolean {
    return this.#state === Chunk.Done;
  }

  /**
   * Reads `input` from `start`.
   * @returns the index just past the body's end, or input.length when the body goes on.
   * @throws WireError when the framing is malformed.
   */
  push(input: Buffer, start = 0): number {
    let i = start;
    const n = input.length;
    while (i < n) {
      switch (this.#state) {
        case Chunk.Size: {
          const c = input[i] as number;
          const digit = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
          if (digit >= 0) {
            if (++this.#digits > 12) throw new WireError(400, "a chunk size is too large");
            this.#size = this.#size * 16 + digit;
          } else if (this.#digits === 0) {
            throw new WireError(400, "a chunk size is not hexadecimal");
          } else if (c === 59 /* ; */) {
            this.#state = Chunk.Extension;
            this.#lineBytes = 0;
          } else if (c === 13) {
            this.#state = Chunk.SizeLf;
          } else {
            throw new WireError(400, "a chunk size is not hexadecimal");
          }
          i++;
          break;
        }
        case Chunk.Extension: {
          const c = input[i] as number;
          if (c === 13) this.#state = Chunk.SizeLf;
          else if (c === 10 || c === 0 || ++this.#lineBytes > 4096) throw new WireError(400, "a malformed chunk extension");
          i++;
          break;
        }
        case Chunk.SizeLf:
          if (input[i] !== 10) throw new WireError(400, "a chunk size line does not end in CRLF");
          i++;
          if (this.#size === 0) {
            this.#state = Chunk.Trailer;
            this.#trailerPart = Trailer.Start;
          } else {
            this.#state = Chunk.Data;
          }
          break;
        case Chunk.Data: {
          const take = Math.min(this.#size, n - i);
          this.#onData(input.subarray(i, i + take));
          this.#size -= take;
          i += take;
          if (this.#size === 0) this.#state = Chunk.DataCr;
          break;
        }
        case Chunk.DataCr:
          if (input[i] !== 13) throw new WireError(400, "a chunk's data is longer than its size");
          this.#state = Chunk.DataLf;
          i++;
          break;
        case Chunk.DataLf:
          if (input[i] !== 10) throw new WireError(400, "a chunk's data does not end in CRLF");
          this.#state = Chunk.Size;
          this.#digits = 0;
          this.#size = 0;
          i++;
          break;
        case Chunk.Trailer: {
          // Trailer fields are dropped (nothing here forwards them), but each line must still be a
          // field line, as in a head: a line another parser would read differently is refused.
          const c = input[i] as number;
          i++;
          if (++this.#trailerBytes > this.#maxTrailerBytes) throw new WireError(431, "the trailers are too large");
          if (c === 13) {
            if (this.#trailerPart === Trailer.Name) throw new WireError(400, "a trailer line without a name and a colon");
            this.#state = Chunk.TrailerLf;
          } else if (this.#trailerPart === Trailer.Value) {
            if ((c < 32 && c !== 9) || c === 127) throw new WireError(400, "a trailer field has a control character");
          } else if (TOKEN_CHARS[c] === 1) {
            this.#trailerPart = Trailer.Name;
          } else if (c === 58 /* : */ && this.#trailerPart === Trailer.Name) {
            this.#trailerPart = Trailer.Value;
          } else {
            throw new WireError(400, this.#trailerPart === Trailer.Start && (c === 32 || c === 9) ? "a folded trailer line" : "a malformed trailer line");
          }
          break;
        }
        case Chunk.TrailerLf:
          if (input[i] !== 10) throw new WireError(400, "a trailer line does not end in CRLF");
          i++;
          if (this.#trailerPart === Trailer.Start) {
            this.#state = Chunk.Done;
            return i;
          }
          this.#state = Chunk.Trailer;
          this.#trailerPart = Trailer.Start;
          break;
        case Chunk.Done:
          return i;
      }
    }
    return i;
  }
}

/** Writes header fields as lines (a list as several lines of one name), for a head in latin1. */
export function fieldLines(headers: OutgoingHttpHeaders): string {
  let out = "";
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      for (const one of value) out += `${name}: ${one}\r\n`;
    } else {
      out += `${name}: ${String(value)}\r\n`;
    }
  }
  return out;
}

/** The size line of a chunk of `length` bytes. */
export const chunkHead = (length: number): string => `${length.toString(16)}\r\n`;

/** The last chunk, with no trailers. */
export const LAST_CHUNK = "0\r\n\r\n";
