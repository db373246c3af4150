// snitch-proxy's parser driven as its HTTP/1.1 sides drive it: the request stream as http1/front.ts
// reads it (empty lines skipped, the head up to the first CRLFCRLF, then the body by its framing,
// then the next request), and an upstream's answer as http1/origin.ts reads it (1xx heads skipped,
// 101 refused, then the final head and its body, delimited by its length, its chunks or the close).
import { ChunkedDecoder, WireError, parseRequestHead, parseResponseHead, requestFraming, responseFraming, type Framing } from "../wire.ts";
import { byName, type Message, type Outcome } from "./outcome.ts";
import type { Random } from "./random.ts";

const CRLFCRLF = Buffer.from("\r\n\r\n");
/** node:http's default head limit, so that size alone never separates the two parsers. */
const MAX_HEAD = 16_384;

/** The header bag in the compared shape (sorted by name: a JS object puts integer-like keys first). */
function fields(headers: NodeJS.Dict<string | string[]>): [string, string][] {
  const out: [string, string][] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined) out.push([name, Array.isArray(value) ? value.join("\n") : value]);
  }
  return out.sort(byName);
}

/** Why the parser refused: its message. */
function reason(error: unknown): string {
  if (error instanceof WireError) return error.message;
  throw error;
}

/**
 * Reads a body framed by `framing` from `input` at `from`, in pieces cut at random places (the
 * decoder must not depend on how the bytes arrive). Returns the body and where it ends, or
 * undefined when the input ends first.
 */
function readBody(input: Buffer, from: number, framing: Framing, random: Random): { body: string; end: number } | undefined {
  if (framing.kind === "none") return { body: "", end: from };
  if (framing.kind === "length") {
    if (input.length - from < framing.length) return undefined;
    return { body: input.toString("latin1", from, from + framing.length), end: from + framing.length };
  }
  if (framing.kind === "close") return { body: input.toString("latin1", from), end: input.length };
  const pieces: Buffer[] = [];
  const decoder = new ChunkedDecoder((piece) => pieces.push(Buffer.from(piece)));
  let at = from;
  while (at < input.length) {
    const cut = random.chance(0.5) ? input.length : Math.min(input.length, at + 1 + random.int(8));
    const piece = input.subarray(at, cut);
    const used = decoder.push(piece, 0);
    if (decoder.done) return { body: Buffer.concat(pieces).toString("latin1"), end: at + used };
    at = cut;
  }
  return undefined;
}

/** Parses a stream of pipelined requests as http1/front.ts does. */
export function oursRequests(input: Buffer, random: Random): Outcome {
  const messages: Message[] = [];
  let pos = 0;
  for (;;) {
    let start = pos;
    while (input.length >= start + 2 && input[start] === 13 && input[start + 1] === 10) start += 2;
    if (start >= input.length) return { messages, stop: { kind: "clean" } };
    const end = input.indexOf(CRLFCRLF, start);
    if (end < 0 || end - start > MAX_HEAD) {
      if (input.length - start > MAX_HEAD) return { messages, stop: { kind: "error", reason: "the request head is larger than the limit" } };
      return { messages, stop: { kind: "incomplete" } };
    }
    let head;
    let framing: Framing;
    let body;
    try {
      head = parseRequestHead(input.toString("latin1", start, end));
      framing = requestFraming(head.headers);
      const expect = head.headers.expect;
      if (expect !== undefined && expect.toLowerCase() !== "100-continue") return { messages, stop: { kind: "error", reason: "an expectation that cannot be met" } };
      body = readBody(input, end + 4, framing, random);
    } catch (error) {
      return { messages, stop: { kind: "error", reason: reason(error) } };
    }
    if (body === undefined) return { messages, stop: { kind: "incomplete" } };
    messages.push({ method: head.method, target: head.target, status: 0, version: `1.${String(head.minor)}`, headers: fields(head.headers), body: body.body, end: body.end });
    pos = body.end;
  }
}

/** Parses an upstream's answer to a `method` request as http1/origin.ts does. */
export function oursResponse(input: Buffer, method: string, random: Random): Outcome {
  const messages: Message[] = [];
  let from = 0;
  for (;;) {
    const end = input.indexOf(CRLFCRLF, from);
    if (end < 0) return { messages, stop: input.length - from > MAX_HEAD ? { kind: "error", reason: "the upstream's response head is too large" } : { kind: "incomplete" } };
    let head;
    let body;
    try {
      head = parseResponseHead(input.toString("latin1", from, end));
      if (head.status === 101) return { messages, stop: { kind: "error", reason: "the upstream switched protocols on a plain request" } };
      // The fields as parsed: responseFraming drops a Content-Length that a coding overrides.
      const parsed = fields(head.headers);
      const framing = responseFraming(method, head);
      if (head.status < 200) {
        messages.push({ method: "", target: "", status: head.status, version: `1.${String(head.minor)}`, headers: parsed, body: "", end: end + 4 });
        from = end + 4;
        continue;
      }
      body = readBody(input, end + 4, framing, random);
      if (body === undefined) return { messages, stop: { kind: "incomplete" } };
      messages.push({ method: "", target: "", status: head.status, version: `1.${String(head.minor)}`, headers: parsed, body: body.body, end: body.end });
      return { messages, stop: { kind: "clean" } };
    } catch (error) {
      return { messages, stop: { kind: "error", reason: reason(error) } };
    }
  }
}
