// The known, justified ways snitch-proxy's parser and llhttp part: inputs that only one of them
// accepts. Each category names the side that accepts, why that is right for snitch-proxy, and a
// check on the input itself, so that a category cannot swallow a disagreement it does not explain.
import { LLHTTP_METHODS } from "./llhttp.ts";
import type { Message, Outcome } from "./outcome.ts";

/** A message that only one parser read, with what the other one said. */
export interface Disagreement {
  readonly kind: "request" | "response";
  /** The parser that read the message. */
  readonly side: "ours" | "llhttp";
  /** The message it read. */
  readonly message: Message;
  /** Why the other parser did not: its error, or "incomplete" when it waits for more. */
  readonly refusal: string;
  /** The bytes from where the message starts. */
  readonly bytes: string;
  /** The messages read before it (both parsers agree on those). */
  readonly before: readonly Message[];
}

/** A named, justified difference. */
export interface Category {
  readonly name: string;
  readonly side: "ours" | "llhttp";
  readonly kinds: readonly ("request" | "response")[];
  /** Why snitch-proxy's side is right, with the rule it follows. */
  readonly why: string;
  readonly matches: (d: Disagreement) => boolean;
}

const field = (message: Message, name: string) => message.headers.find(([n]) => n === name)?.[1];
/** The head's lines, from the start of the message to the first empty line. */
const headLines = (bytes: string) => {
  const head = bytes.replace(/^(\r\n)+/, "");
  return head.slice(0, Math.max(0, head.indexOf("\r\n\r\n"))).split("\r\n");
};
/** How many header lines of the head match `pattern`. */
const count = (bytes: string, pattern: RegExp) => headLines(bytes).filter((line) => pattern.test(line)).length;
/** The bytes after the head, up to where the accepting parser ended the message. */
const after = (d: Disagreement) => d.bytes.slice(d.bytes.indexOf("\r\n\r\n") + 4, d.message.end - (d.before.at(-1)?.end ?? 0));
/** Whether `text` has a control character other than HTAB. */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 127) return true;
  }
  return false;
}

/** Every category; a disagreement none of them explains fails the test. */
export const CATEGORIES: readonly Category[] = [
  // --- llhttp accepts, snitch-proxy refuses ---
  {
    name: "request-line-form",
    side: "llhttp",
    kinds: ["request"],
    why: "RFC 9112 §3: METHOD SP TARGET SP VERSION, one space each; llhttp also takes runs of spaces and a line with no version (HTTP/0.9, even ended by a bare LF), which snitch-proxy refuses (400, or 408 while it waits for a CRLF) rather than guess where the target ends",
    matches: (d) =>
      (d.refusal === "the request line is not METHOD TARGET VERSION" || d.refusal === "the request line has no HTTP version" || (d.refusal === "incomplete" && d.message.version === "0.9")) &&
      !/^[^ ]+ [^ ]+ HTTP\/1\.[01]$/.test(d.bytes.replace(/^(\r\n)+/, "").split("\r\n")[0] ?? ""),
  },
  {
    name: "http-version",
    side: "llhttp",
    kinds: ["request"],
    why: "RFC 9110 §15.6.6: a server answers 505 to a major version it does not speak; snitch-proxy's HTTP/1 side speaks 1.0 and 1.1, llhttp also takes 0.9 and 2.0",
    matches: (d) => / is not spoken here$/.test(d.refusal) && d.message.version !== "1.0" && d.message.version !== "1.1",
  },
  {
    name: "target-form",
    side: "llhttp",
    kinds: ["request"],
    why: "origin-form only (and * for OPTIONS): snitch-proxy is no forward proxy and routes by Host; an absolute- or authority-form target whose host could differ from Host is refused rather than chosen between (RFC 9112 §3.2)",
    matches: (d) => d.refusal === "the request target does not start with /" && (!d.message.target.startsWith("/") || d.message.method !== "OPTIONS"),
  },
  {
    name: "bare-empty-line-before-request",
    side: "llhttp",
    kinds: ["request"],
    why: "RFC 9112 §2.2: a server SHOULD ignore at least one empty line (CRLF) before a request line; snitch-proxy skips CRLFs only, llhttp also a bare LF or CR",
    matches: (d) => d.refusal === "the method is not a token" && /^(\r\n)*(\n|\r(?!\n))/.test(d.bytes),
  },
  {
    name: "expectation",
    side: "llhttp",
    kinds: ["request"],
    why: "RFC 9110 §10.1.1: an expectation that is not understood may be answered 417; snitch-proxy understands one 100-continue, not a list of them; llhttp does not look at Expect",
    matches: (d) => d.refusal === "an expectation that cannot be met" && (field(d.message, "expect") ?? "").toLowerCase() !== "100-continue",
  },
  {
    name: "repeated-host",
    side: "llhttp",
    kinds: ["request", "response"],
    why: "RFC 9112 §3.2: a server MUST answer 400 to a request with more than one Host line; snitch-proxy refuses a repeated Host in either direction, llhttp combines them",
    matches: (d) => / two host headers$/.test(` ${d.refusal}`) && count(d.bytes, /^host:/i) >= 2,
  },
  {
    name: "content-length-digits",
    side: "llhttp",
    kinds: ["request", "response"],
    why: "a length of more than 15 digits, leading zeros included, is refused: a size cap (JavaScript numbers are exact to 2^53); llhttp takes any number of leading zeros",
    matches: (d) => /a Content-Length that is not a number$/.test(d.refusal) && /^\d{16,}$/.test(field(d.message, "content-length") ?? ""),
  },
  {
    name: "chunk-size-digits",
    side: "llhttp",
    kinds: ["request", "response"],
    why: "a chunk size of more than 12 hex digits, leading zeros included, is refused: a size cap (and the classic smuggling shape); llhttp takes any number of leading zeros",
    matches: (d) => d.refusal === "a chunk size is too large" && /(^|\r\n)[0-9a-fA-F]{13,}/.test(after(d)),
  },
  {
    name: "chunk-extension-length",
    side: "llhttp",
    kinds: ["request", "response"],
    why: "a chunk extension longer than 4 KiB is refused: a size cap (extensions are dropped unread); llhttp has none",
    matches: (d) => d.refusal === "a malformed chunk extension" && /;[^\r\n\0]{4096}/.test(d.bytes),
  },
  {
    name: "request-transfer-coding",
    side: "llhttp",
    kinds: ["request"],
    why: "a request may use chunked alone (RFC 9112 §6.1 lets a server refuse a coding it does not decode): llhttp takes gzip, chunked (and an empty list member) and decodes only the chunked layer",
    matches: (d) => /^the transfer coding .* is not chunked$/.test(d.refusal) && /(^|,)[ \t]*chunked[ \t]*$/i.test(field(d.message, "transfer-encoding") ?? ""),
  },
  {
    name: "status-line-form",
    side: "llhttp",
    kinds: ["response"],
    why: "RFC 9112 §4: HTTP/1.0 or HTTP/1.1, one space, three digits; llhttp also skips empty lines before a status line and takes other versions and separators; refused (502)",
    matches: (d) => / no HTTP\/1\.x status line$/.test(d.refusal) && !/^HTTP\/1\.[01] /.test(d.bytes),
  },
  {
    name: "status-code-range",
    side: "llhttp",
    kinds: ["response"],
    why: "RFC 9110 §15: a status code is three digits, 1xx to 5xx; llhttp takes 0xx",
    matches: (d) => / no three-digit status$/.test(d.refusal) && d.message.status < 100,
  },
  {
    name: "reason-control-character",
    side: "llhttp",
    kinds: ["response"],
    why: "RFC 9112 §4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ); a control character in it is refused (502), llhttp takes all but CR and LF",
    matches: (d) => / a control character in the status line$/.test(d.refusal) && hasControl(d.bytes.split("\r\n")[0] ?? ""),
  },
  {
    name: "transfer-encoding-tab",
    side: "llhttp",
    kinds: ["request", "response"],
    why: "RFC 9110 trims a trailing tab from a field value, llhttp does not for Transfer-Encoding: it reads 'chunked<TAB>' as an unknown coding (in a response, a body until the close) where RFC readers see chunked; refused (400, 502) as ambiguous",
    matches: (d) => /a Transfer-Encoding value that ends in a tab$/.test(d.refusal) && count(d.bytes, /^transfer-encoding:.*\t[ \t]*$/i) > 0,
  },
  {
    name: "switching-protocols",
    side: "llhttp",
    kinds: ["response"],
    why: "the upstream client never asks for an upgrade on a plain request, so a 101 is refused (502); llhttp hands the connection over",
    matches: (d) => d.refusal === "the upstream switched protocols on a plain request" && d.message.status === 101,
  },
  // --- snitch-proxy accepts, llhttp refuses ---
  {
    name: "after-connection-close",
    side: "ours",
    kinds: ["request", "response"],
    why: "the message before ends the connection (Connection: close, or HTTP/1.0 without keep-alive); llhttp refuses what follows, snitch-proxy never reads it (the front closes after its answer; an interim answer does not end an exchange)",
    matches: (d) => {
      const previous = d.before.at(-1);
      if (!d.refusal.startsWith("HPE_CLOSED_CONNECTION") || previous === undefined) return false;
      const connection = field(previous, "connection") ?? "";
      return /(^|,)[ \t]*close[ \t]*(,|$)/i.test(connection) || (previous.version === "1.0" && !/(^|,)[ \t]*keep-alive[ \t]*(,|$)/i.test(connection));
    },
  },
  {
    name: "method-token",
    side: "ours",
    kinds: ["request"],
    why: "RFC 9110 §9.1: a method is any token, case-sensitive, and the set is extensible; llhttp knows a fixed list, snitch-proxy passes any token on to the backend",
    matches: (d) => d.refusal.startsWith("HPE_INVALID_METHOD") && !LLHTTP_METHODS.includes(d.message.method),
  },
  {
    name: "target-obs-text",
    side: "ours",
    kinds: ["request"],
    why: "bytes above 0x7F in a target are passed on as they came (what many clients send for UTF-8 paths); llhttp refuses them; a space or control character is refused by both",
    matches: (d) => d.refusal.startsWith("HPE_INVALID_URL") && /[\x80-\xff]/.test(d.message.target),
  },
  {
    name: "chunk-extension-grammar",
    side: "ours",
    kinds: ["request", "response"],
    why: "chunk extensions are dropped unread (RFC 9112 §7.1.1 lets a recipient ignore them) up to the size line's CRLF, where both parsers end it; llhttp also checks their grammar",
    matches: (d) => /^HPE_STRICT .*chunk extensions/.test(d.refusal) && /[0-9a-fA-F][ \t]*;/.test(after(d)),
  },
  {
    name: "identical-content-lengths",
    side: "ours",
    kinds: ["request", "response"],
    why: "RFC 9110 §8.6: a recipient may take repeated Content-Length lines of one value as one; different values are refused by both",
    matches: (d) => d.refusal.startsWith("HPE_UNEXPECTED_CONTENT_LENGTH Duplicate") && new Set(headLines(d.bytes).filter((l) => /^content-length:/i.test(l)).map((l) => l.slice(15).trim())).size === 1,
  },
  {
    name: "framing-field-in-trailers",
    side: "ours",
    kinds: ["request", "response"],
    why: "trailer fields are dropped, never merged into the head (RFC 9110 §6.5.1), so a Content-Length or Transfer-Encoding there frames nothing; llhttp refuses it",
    matches: (d) => /^HPE_INVALID_(CONTENT_LENGTH|TRANSFER_ENCODING)/.test(d.refusal) && field(d.message, "transfer-encoding") !== undefined && field(d.message, "content-length") === undefined && /\r\n(content-length|transfer-encoding):/i.test(after(d)),
  },
  {
    name: "response-length-and-coding",
    side: "ours",
    kinds: ["response"],
    why: "RFC 9112 §6.3: in a response, Transfer-Encoding overrides Content-Length, which is dropped before the answer is passed on; llhttp refuses the pair",
    matches: (d) => /can't be present with/.test(d.refusal) && field(d.message, "transfer-encoding") !== undefined && field(d.message, "content-length") !== undefined,
  },
];

/** The first category that explains `d`, or undefined. */
export function classify(d: Disagreement): Category | undefined {
  return CATEGORIES.find((category) => category.side === d.side && category.kinds.includes(d.kind) && category.matches(d));
}

/** Why an outcome stopped, as the refusal of a disagreement. */
export function refusalOf(outcome: Outcome): string {
  return outcome.stop.kind === "error" ? outcome.stop.reason : outcome.stop.kind;
}
