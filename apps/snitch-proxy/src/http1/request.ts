// One request on a client's HTTP/1.1 connection (front.ts): its body, streamed in with
// back-pressure, and its answer, written with one write per burst (head and body together).
import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import type { TLSSocket } from "node:tls";
import type { BodySink, BodySource, Exchange, Reply } from "../exchange.ts";
import type { PageStatus } from "../pages.ts";
import { ChunkedDecoder, LAST_CHUNK, chunkHead, fieldLines, type Framing, type WireError } from "./wire.ts";

/** Chunks up to this size are written together with the head as one string. */
const SMALL = 16_384;
/** Pipelined or held body bytes kept while a request is answered; past this the socket is paused. */
export const MAX_PENDING = 65_536;

let dateSecond = 0;
let dateText = "";

/** The current time as an HTTP date, made once a second. */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** What a request needs of its connection. */
export interface ExchangeConnection {
  readonly socket: TLSSocket;
  lastActive: number;
  pause(): void;
  resume(): void;
  /** The request's body is read: what follows is the next request. */
  bodyRead(rest: Buffer | undefined): void;
  /** The answer is written: the next request may be read, unless the connection closes. */
  answered(exchange: Http1Exchange, close: boolean): void;
  /** Answers a request the front refuses, with its page, and closes the connection. */
  refuse(status: PageStatus, reason: string): void;
}

/** One request on an HTTP/1.1 connection: its body source and its reply. */
export class Http1Exchange implements Exchange, Reply, BodySource {
  readonly #connection: ExchangeConnection;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: BodySource | null;
  readonly reply: Reply = this;
  readonly #minor: 0 | 1;
  readonly #keepAlive: boolean;
  // The body.
  #remaining = 0;
  #decoder: ChunkedDecoder | undefined;
  #sink: BodySink | undefined;
  #held: Buffer[] | undefined;
  #heldBytes = 0;
  #bodyDone: boolean;
  #bodyStopped = false;
  #expectContinue: boolean;
  // The reply.
  headersSent = false;
  done = false;
  statusCode = 200;
  #head: string | undefined;
  #chunked = false;
  #noBody = false;
  #close = false;
  /** The first close listener (there is one per request: its passage), then any others. */
  #closeListener: (() => void) | undefined;
  #moreCloseListeners: (() => void)[] | undefined;

  constructor(connection: ExchangeConnection, method: string, url: string, headers: IncomingHttpHeaders, minor: 0 | 1, keepAlive: boolean, framing: Framing, expectContinue: boolean) {
    this.#connection = connection;
    this.method = method;
    this.url = url;
    this.headers = headers;
    this.#minor = minor;
    this.#keepAlive = keepAlive;
    this.#expectContinue = expectContinue;
    this.#bodyDone = framing.kind === "none";
    this.body = this.#bodyDone ? null : this;
    if (framing.kind === "length") this.#remaining = framing.length;
    else if (framing.kind === "chunked") this.#decoder = new ChunkedDecoder((piece) => this.#deliver(piece));
  }

  get socket(): TLSSocket {
    return this.#connection.socket;
  }

  // --- the body, as it arrives ---

  /** Takes body bytes from `chunk` at `at`; what follows the body goes back to the connection. */
  feed(chunk: Buffer, at: number): void {
    if (this.#decoder !== undefined) {
      let end: number;
      try {
        end = this.#decoder.push(chunk, at);
      } catch (error) {
        this.#bodyFailed(error as WireError);
        return;
      }
      if (this.#decoder.done) this.#bodyEnded(end < chunk.length ? chunk.subarray(end) : undefined);
      return;
    }
    const take = Math.min(this.#remaining, chunk.length - at);
    this.#remaining -= take;
    this.#deliver(at === 0 && take === chunk.length ? chunk : chunk.subarray(at, at + take));
    if (this.#remaining === 0) this.#bodyEnded(at + take < chunk.length ? chunk.subarray(at + take) : undefined);
  }

  #deliver(piece: Buffer): void {
    if (piece.length === 0 || this.#bodyStopped) return;
    if (this.#sink !== undefined) {
      if (!this.#sink.data(piece)) this.#connection.pause();
      return;
    }
    (this.#held ??= []).push(piece);
    this.#heldBytes += piece.length;
    // Held until somebody wants the body (a waking unit): not more than a window of it.
    if (this.#heldBytes > MAX_PENDING) this.#connection.pause();
  }

  #bodyEnded(rest: Buffer | undefined): void {
    this.#bodyDone = true;
    this.#connection.bodyRead(rest);
    if (this.#sink !== undefined && !this.#bodyStopped) this.#sink.end();
  }

  #bodyFailed(error: WireError): void {
    const sink = this.#sink;
    this.#bodyStopped = true;
    this.#connection.refuse(error.status === 431 ? 431 : 400, `the request body: ${error.message}`);
    sink?.error(error);
  }

  start(sink: BodySink): void {
    this.#sink = sink;
    if (this.#expectContinue && !this.headersSent) {
      this.#expectContinue = false;
      this.#connection.socket.write("HTTP/1.1 100 Continue\r\n\r\n", "latin1");
    }
    const held = this.#held;
    this.#held = undefined;
    this.#heldBytes = 0;
    let more = true;
    if (held !== undefined) for (const piece of held) more = sink.data(piece) && more;
    if (this.#bodyDone) sink.end();
    else if (more) this.#connection.resume();
  }

  resume(): void {
    this.#connection.resume();
  }

  stop(): void {
    // The body is not wanted: the connection closes after the answer rather than read it all.
    this.#bodyStopped = true;
    this.#held = undefined;
  }

  // --- the reply ---

  writeHead(status: number, headers: OutgoingHttpHeaders): void {
    if (this.headersSent || this.done) return;
    this.headersSent = true;
    this.statusCode = status;
    this.#noBody = this.method === "HEAD" || status === 204 || status === 304 || status < 200;
    if (!this.#noBody && headers["content-length"] === undefined) {
      // A body of unknown length: chunked for HTTP/1.1, delimited by the close for HTTP/1.0.
      if (this.#minor === 1) this.#chunked = true;
      else this.#close = true;
    }
    if (!this.#keepAlive) this.#close = true;
    const connection = this.#close ? "connection: close\r\n" : this.#minor === 0 ? "connection: keep-alive\r\n" : "";
    // Every answer carries a Date (RFC 9110 §6.6.1): the upstream's, or the time it was sent on.
    const date = headers.date === undefined ? `date: ${httpDate()}\r\n` : "";
    this.#head = `HTTP/1.1 ${String(status)} ${STATUS_CODES[status] ?? ""}\r\n${fieldLines(headers)}${date}${this.#chunked ? "transfer-encoding: chunked\r\n" : ""}${connection}\r\n`;
  }

  write(chunk: Buffer): boolean {
    if (this.done) return true;
    const socket = this.#connection.socket;
    this.#connection.lastActive = performance.now();
    if (this.#head === undefined && (this.#noBody || chunk.length === 0)) return true;
    if (chunk.length <= SMALL) return socket.write(this.#frame(chunk, false), "latin1");
    socket.cork();
    const more = this.#put(socket, chunk);
    socket.uncork();
    return more;
  }

  /**
   * The pending head and a small chunk (framed when chunked), and the last chunk when `last`, as
   * one latin1 string: one write, which costs less than a corked write of several pieces.
   */
  #frame(chunk: Buffer | undefined, last: boolean): string {
    let out = this.#head ?? "";
    this.#head = undefined;
    if (!this.#noBody) {
      if (chunk !== undefined && chunk.length > 0) out += this.#chunked ? `${chunkHead(chunk.length)}${chunk.toString("latin1")}\r\n` : chunk.toString("latin1");
      if (last && this.#chunked) out += LAST_CHUNK;
    }
    return out;
  }

  /** Writes the head if it is still pending, then the chunk (framed when chunked); inside a cork. */
  #put(socket: TLSSocket, chunk: Buffer | undefined): boolean {
    let more = true;
    if (this.#head !== undefined) {
      more = socket.write(this.#head, "latin1");
      this.#head = undefined;
    }
    if (chunk === undefined || chunk.length === 0 || this.#noBody) return more;
    if (!this.#chunked) return socket.write(chunk);
    socket.write(chunkHead(chunk.length), "latin1");
    socket.write(chunk);
    return socket.write("\r\n", "latin1");
  }

  onDrain(listener: () => void): void {
    this.#connection.socket.once("drain", listener);
  }

  end(body?: string | Buffer): void {
    if (this.done) return;
    if (!this.headersSent) this.writeHead(200, {});
    const socket = this.#connection.socket;
    const chunk = body === undefined ? undefined : typeof body === "string" ? Buffer.from(body) : body;
    if (chunk === undefined || chunk.length <= SMALL) {
      const out = this.#frame(chunk, true);
      if (out.length > 0) socket.write(out, "latin1");
    } else {
      socket.cork();
      this.#put(socket, chunk);
      if (this.#chunked && !this.#noBody) socket.write(LAST_CHUNK, "latin1");
      socket.uncork();
    }
    this.done = true;
    this.#connection.answered(this, this.#close || !this.#bodyDone);
    this.#closed();
  }

  destroy(): void {
    if (this.done) return;
    this.#connection.socket.destroy();
  }

  onClose(listener: () => void): void {
    if (this.#closeListener === undefined) this.#closeListener = listener;
    else (this.#moreCloseListeners ??= []).push(listener);
  }

  /** The connection is gone (or refused the rest of the request): the answer is over, unsent. */
  lost(status?: number): void {
    if (this.done) return;
    this.done = true;
    if (status !== undefined) this.statusCode = status;
    if (!this.#bodyDone && !this.#bodyStopped) {
      this.#bodyStopped = true;
      this.#sink?.error(new Error("the client went away"));
    }
    this.#closed();
  }

  #closed(): void {
    const first = this.#closeListener;
    const more = this.#moreCloseListeners;
    this.#closeListener = this.#moreCloseListeners = undefined;
    first?.();
    if (more !== undefined) for (const listener of more) listener();
  }
}
