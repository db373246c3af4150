// The reference: Node's own HTTP/1.1 parser (llhttp, strict as node:http runs it by default),
// reached through node:http's internal HTTPParser binding. The input is fed one byte at a time so
// that the exact offset where each message ends is known (llhttp does not report it otherwise).
import { createRequire } from "node:module";
import { normaliseFields, type Message, type Outcome, type Stop } from "./outcome.ts";

/** The part of node:http's internal parser binding used here. */
interface Binding {
  new (): BindingParser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
}

interface BindingParser {
  [callback: number]: unknown;
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | (Error & { code?: string; reason?: string });
  finish(): undefined | (Error & { code?: string; reason?: string });
  close(): void;
}

// Not a public module: node:http's own parser binding, the one every node:http server uses.
const common = createRequire(import.meta.url)("_http_common") as { HTTPParser: Binding; methods: string[] };
const { HTTPParser, methods } = common;

/** Methods llhttp knows (it refuses any other). */
export const LLHTTP_METHODS: readonly string[] = methods;

/** Whether `parse` can run on this Node (the binding is internal and could go away). */
export const available = typeof HTTPParser === "function" && typeof HTTPParser.kOnHeadersComplete === "number";

/** llhttp's error code and reason, e.g. "HPE_INVALID_METHOD Invalid method encountered". */
function describe(error: Error & { code?: string; reason?: string }): string {
  return `${error.code ?? "?"} ${error.reason ?? error.message}`;
}

interface Pending {
  method: string;
  target: string;
  status: number;
  version: string;
  fields: (readonly [string, string])[];
  body: Buffer[];
  headDone: boolean;
}

/**
 * Parses `input` with llhttp as a request stream (pipelined requests) or as the answer to a
 * request with `method` (interim 1xx answers, then the final one; what follows it is not read).
 */
export function llhttpParse(input: Buffer, kind: "request" | "response", method = "GET"): Outcome {
  const parser = new HTTPParser();
  const messages: Message[] = [];
  let current: Pending | undefined;
  let offset = 0;
  // Set by the callbacks, so an object: the checks below are not narrowed away.
  const seen = { final: false };
  const fresh = (): Pending => ({ method: "", target: "", status: 0, version: "", fields: [], body: [], headDone: false });
  const take = (flat: readonly string[] | undefined, into: Pending) => {
    if (flat === undefined) return;
    for (let i = 0; i + 1 < flat.length; i += 2) into.fields.push([flat[i] as string, flat[i + 1] as string]);
  };
  // Headers arrive in batches of 32 (kOnHeaders) and the rest with the head; after the head, a
  // batch is the trailer section, which snitch-proxy drops, so it is not compared.
  parser[HTTPParser.kOnHeaders] = (flat: string[], url: string) => {
    current ??= fresh();
    if (current.headDone) return;
    take(flat, current);
    if (url) current.target += url;
  };
  parser[HTTPParser.kOnHeadersComplete] = (major: number, minor: number, flat: string[] | undefined, methodIndex: number | undefined, url: string | undefined, status: number | undefined) => {
    current ??= fresh();
    take(flat, current);
    if (url) current.target += url;
    current.method = methodIndex === undefined ? "" : (methods[methodIndex] ?? `#${String(methodIndex)}`);
    current.status = status ?? 0;
    current.version = `${String(major)}.${String(minor)}`;
    current.headDone = true;
    // 1: no body, as node:http's client answers for a HEAD request and for an interim answer.
    return kind === "response" && (method === "HEAD" || (current.status >= 100 && current.status < 200)) ? 1 : 0;
  };
  parser[HTTPParser.kOnBody] = (chunk: Buffer) => {
    current?.body.push(Buffer.from(chunk));
  };
  parser[HTTPParser.kOnMessageComplete] = () => {
    const done = current ?? fresh();
    current = undefined;
    messages.push({
      method: kind === "request" ? done.method : "",
      target: kind === "request" ? done.target : "",
      status: kind === "response" ? done.status : 0,
      version: done.version,
      headers: normaliseFields(done.fields),
      body: Buffer.concat(done.body).toString("latin1"),
      end: offset + 1,
    });
    if (kind === "response" && done.status >= 200) seen.final = true;
  };
  parser.initialize(kind === "request" ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, 0, 0);
  let stop: Stop | undefined;
  try {
    for (; offset < input.length && !seen.final; offset++) {
      const result = parser.execute(input.subarray(offset, offset + 1));
      if (typeof result !== "number") {
        stop = { kind: "error", reason: describe(result) };
        break;
      }
    }
    if (stop === undefined && kind === "response" && !seen.final) {
      // The upstream closed: a body delimited by the close ends here.
      offset = input.length - 1;
      const result = parser.finish();
      // finish() completes a body delimited by the close, or says why the input ended too soon.
      if (result !== undefined) stop = { kind: "error", reason: describe(result) };
    }
  } finally {
    parser.close();
  }
  if (stop === undefined) {
    // Between requests llhttp skips CR and LF; anything else is the start of one not finished.
    const tail = input.subarray(messages.at(-1)?.end ?? 0);
    const rest = kind === "response" ? seen.final : tail.every((byte) => byte === 13 || byte === 10);
    stop = rest ? { kind: "clean" } : { kind: "incomplete" };
  }
  return { messages, stop };
}
