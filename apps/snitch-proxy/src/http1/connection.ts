// One HTTP/1.1 client connection of the front (front.ts): a state machine from request head to
// body to answer and back, reading pipelined requests one at a time, with the deadlines checked
// by the front's timer. A head arriving in pieces is gathered with linear copying and scanning.
import { STATUS_CODES } from "node:http";
import type { TLSSocket } from "node:tls";
import { newRequestId } from "@coyote/log";
import { errorHeaders, errorPage, type PageStatus } from "../pages.ts";
import type { Http1Front, UpgradeRequest } from "./front.ts";
import { Http1Exchange, MAX_PENDING, httpDate, type ExchangeConnection } from "./request.ts";
import { ReadSwitch } from "./read-switch.ts";
import { fieldLines, parseRequestHead, requestFraming, type Framing, type WireError } from "./wire.ts";

const CRLFCRLF = Buffer.from("\r\n\r\n");
const TOKEN_CLOSE = /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i;
const TOKEN_KEEP_ALIVE = /(?:^|,)[ \t]*keep-alive[ \t]*(?:,|$)/i;
const TOKEN_UPGRADE = /(?:^|,)[ \t]*upgrade[ \t]*(?:,|$)/i;
const TOKEN_H2C = /(?:^|,)[ \t]*h2c[ \t]*(?:,|$)/i;

const enum State {
  /** Waiting for (the rest of) a request head. */
  Head,
  /** Reading a request body. */
  Body,
  /** The request is read; its answer is on its way. */
  Answer,
  Closed,
}

/** One client connection. */
export class Connection implements ExchangeConnection {
  readonly #front: Http1Front;
  readonly socket: TLSSocket;
  #state = State.Head;
  /** Bytes read and not yet parsed: a partial head, or pipelined requests. */
  #pending: Buffer | undefined;
  /**
   * Where a head arriving in pieces is gathered: `#pending` is its start, the rest is free room
   * (doubled when full), so a head sent byte by byte costs linear copying, not quadratic.
   */
  #store: Buffer | undefined;
  /** Bytes at the start of `#pending` already searched for the end of a head, in vain. */
  #scanned = 0;
  /** When the current request's first byte arrived (0: none yet). */
  #requestStarted = 0;
  /** When the connection went idle between requests (or opened). */
  #idleSince: number;
  lastActive: number;
  #served = 0;
  #exchange: Http1Exchange | undefined;
  #pumping = false;
  readonly #reads: ReadSwitch;

  constructor(front: Http1Front, socket: TLSSocket) {
    this.#front = front;
    this.socket = socket;
    this.#reads = new ReadSwitch(socket);
    this.#idleSince = this.lastActive = performance.now();
    socket.on("data", this.#onData);
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
  }

  /**
   * Destroys this connection after an exception while serving it: thrown out of an event handler,
   * it would end the process and every other connection with it.
   */
  fault(error: unknown, where: string): void {
    this.#state = State.Closed;
    this.#front.forget(this);
    this.socket.destroy();
    try {
      this.#front.handlers.fault(error, where);
    } catch {
      // The report failed too; the connection is gone either way.
    }
  }

  readonly #onData = (chunk: Buffer): void => {
    try {
      this.#take(chunk);
    } catch (error) {
      this.fault(error, "serving an HTTP/1.1 request");
    }
  };

  #take(chunk: Buffer): void {
    this.lastActive = performance.now();
    // Refused and closing: what else the client sends is not read, nor kept.
    if (this.#state === State.Closed) return;
    if (this.#state === State.Body) {
      (this.#exchange as Http1Exchange).feed(chunk, 0);
    } else {
      if (this.#pending === undefined) {
        this.#setPending(chunk);
        if (this.#state === State.Head && this.#requestStarted === 0) this.#requestStarted = this.lastActive;
      } else {
        this.#append(this.#pending, chunk);
      }
      if (this.#state === State.Answer && (this.#pending?.length ?? 0) > MAX_PENDING) this.pause();
    }
    this.#pump();
  }

  readonly #onError = (): void => {
    this.socket.destroy();
  };

  readonly #onClose = (): void => {
    this.#state = State.Closed;
    this.#front.forget(this);
    const exchange = this.#exchange;
    this.#exchange = undefined;
    try {
      exchange?.lost();
    } catch (error) {
      this.fault(error, "closing an HTTP/1.1 connection");
    }
  };

  /** Ends the connection after what is written: a peer that never closes its side is cut off later. */
  #close(): void {
    this.#state = State.Closed;
    this.#idleSince = performance.now();
    this.socket.end();
  }

  /** Stops reading from the client (its answer is not taken fast enough, or too much is pending). */
  pause(): void {
    this.#reads.pause();
  }

  /** Reads from the client again. */
  resume(): void {
    this.#reads.resume();
  }

  /** Replaces what is pending by bytes that are not an extension of it. */
  #setPending(pending: Buffer | undefined): void {
    this.#pending = pending;
    this.#store = undefined;
    this.#scanned = 0;
  }

  /** Adds a chunk to what is pending, in the room of `#store` (grown by doubling). */
  #append(pending: Buffer, chunk: Buffer): void {
    const length = pending.length + chunk.length;
    let store = this.#store;
    if (store === undefined || store.length < length) {
      store = Buffer.allocUnsafe(Math.max(length, 2 * (store?.length ?? pending.length), 1024));
      pending.copy(store, 0);
      this.#front.copiedBytes += pending.length;
      this.#store = store;
    }
    chunk.copy(store, pending.length);
    this.#front.copiedBytes += chunk.length;
    this.#pending = store.subarray(0, length);
  }

  /** Reads the requests that are complete in `#pending`, one at a time. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#state === State.Head && this.#pending !== undefined) {
        if (!this.#readRequest(this.#pending)) break;
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** Reads one request from `input`; false when its head is not complete yet. */
  #readRequest(input: Buffer): boolean {
    const { maxHeaderBytes } = this.#front.options;
    // Empty lines before a request line are ignored (RFC 9112 §2.2).
    let start = 0;
    while (input.length >= start + 2 && input[start] === 13 && input[start + 1] === 10) start += 2;
    // What was searched before is not searched again: only its last 3 bytes, which may begin a
    // CRLFCRLF that this chunk completes. A head sent byte by byte costs linear time, not quadratic.
    const from = Math.max(start, this.#scanned - 3);
    const end = input.indexOf(CRLFCRLF, from);
    this.#front.scannedBytes += (end < 0 ? input.length : end + 4) - from;
    if (end < 0 || end - start > maxHeaderBytes) {
      if (input.length - start > maxHeaderBytes) {
        this.refuse(431, "the request head is larger than the limit");
      } else if (start === 0) {
        // The same bytes stay pending (and #store with them): remember how far they were searched.
        this.#pending = input;
        this.#scanned = input.length;
      } else {
        this.#setPending(start === input.length ? undefined : input.subarray(start));
        this.#scanned = input.length - start;
      }
      return false;
    }
    let head;
    let framing: Framing;
    try {
      head = parseRequestHead(input.toString("latin1", start, end));
      framing = requestFraming(head.headers);
    } catch (error) {
      const wire = error as WireError;
      this.refuse(wire.status, wire.message);
      return false;
    }
    const rest = end + 4 < input.length ? input.subarray(end + 4) : undefined;
    this.#setPending(undefined);
    const connectionHeader = head.headers.connection;
    const headers = head.headers;
    // An h2c upgrade is never tunnelled: HTTP/2 over cleartext has no place inside TLS (RFC 9113
    // §3.1), and a tunnel would let the client talk HTTP/2 straight to the backend past every
    // check made here (h2c smuggling). Like nginx and Caddy, the offer is ignored, as a server may
    // (RFC 9110 §7.8): the request is served as a plain one, Upgrade and HTTP2-Settings stripped.
    if (headers.upgrade !== undefined && connectionHeader !== undefined && TOKEN_UPGRADE.test(connectionHeader) && framing.kind === "none" && !TOKEN_H2C.test(headers.upgrade)) {
      this.#handOver({ method: head.method, url: head.target, headers, socket: this.socket }, rest ?? Buffer.alloc(0));
      return false;
    }
    const expect = headers.expect;
    if (expect !== undefined && expect.toLowerCase() !== "100-continue") {
      this.refuse(417, `the expectation ${JSON.stringify(expect.slice(0, 40))} cannot be met`);
      return false;
    }
    const keepAlive = !this.#front.stopping && (head.minor === 1 ? connectionHeader === undefined || !TOKEN_CLOSE.test(connectionHeader) : connectionHeader !== undefined && TOKEN_KEEP_ALIVE.test(connectionHeader));
    const exchange = new Http1Exchange(this, head.method, head.target, headers, head.minor, keepAlive, framing, expect !== undefined);
    this.#exchange = exchange;
    this.#state = framing.kind === "none" ? State.Answer : State.Body;
    if (this.#requestStarted === 0) this.#requestStarted = performance.now();
    if (rest !== undefined) {
      if (this.#state === State.Body) exchange.feed(rest, 0);
      else this.#setPending(rest);
    }
    // A body that was malformed from its first bytes has been refused already.
    if ((this.#state as State) === State.Closed) return false;
    this.#front.handlers.exchange(exchange);
    return true;
  }

  #handOver(request: UpgradeRequest, head: Buffer): void {
    this.#state = State.Closed;
    this.#front.forget(this);
    this.socket.off("data", this.#onData);
    this.socket.off("error", this.#onError);
    this.socket.off("close", this.#onClose);
    // Not flowing until the upgrade handler pipes it: nothing the client sends meanwhile is lost.
    this.socket.pause();
    this.#front.handlers.upgrade(request, head);
  }

  /** The request's body is read: what follows is the next request. */
  bodyRead(rest: Buffer | undefined): void {
    if (this.#state !== State.Body) return;
    this.#state = State.Answer;
    if (rest !== undefined && rest.length > 0) this.#setPending(rest);
  }

  /** The answer is written: the next request may be read, unless the connection closes. */
  answered(exchange: Http1Exchange, close: boolean): void {
    if (this.#exchange !== exchange) return;
    this.#exchange = undefined;
    this.#served++;
    if (close || this.#front.stopping || this.#state === State.Body || this.#state === State.Closed) {
      this.#close();
      return;
    }
    this.#state = State.Head;
    this.#idleSince = performance.now();
    this.#requestStarted = this.#pending === undefined ? 0 : this.#idleSince;
    this.resume();
    this.#pump();
  }

  /** Answers a request the front refuses, with its page, and closes the connection. */
  refuse(status: PageStatus, reason: string): void {
    this.#front.handlers.refused(status, reason);
    this.#setPending(undefined);
    const exchange = this.#exchange;
    this.#state = State.Closed;
    this.#idleSince = performance.now();
    if (exchange !== undefined && exchange.headersSent) {
      this.socket.destroy();
      return;
    }
    this.#exchange = undefined;
    exchange?.lost(status);
    const requestId = newRequestId();
    const body = errorPage(status, requestId);
    this.socket.end(`HTTP/1.1 ${String(status)} ${STATUS_CODES[status] ?? ""}\r\n${fieldLines(errorHeaders(body, requestId))}date: ${httpDate()}\r\nconnection: close\r\n\r\n${body}`);
    this.resume();
  }

  /** Closes the connection when it is between requests (the front is stopping). */
  closeIfIdle(): void {
    if (this.#state === State.Head && this.#pending === undefined) this.#close();
  }

  /** Applies the deadline of the current state: 408, or the socket destroyed. */
  check(now: number): void {
    const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs, idleTimeoutMs } = this.#front.options;
    switch (this.#state) {
      case State.Head:
        if (this.#requestStarted > 0) {
          if (now - this.#requestStarted > headersTimeoutMs) this.refuse(408, "the request head took too long");
        } else if (now - this.#idleSince > (this.#served > 0 ? keepAliveTimeoutMs : headersTimeoutMs)) {
          this.#state = State.Closed;
          this.socket.destroy();
        }
        break;
      case State.Body:
        if (now - this.#requestStarted > requestTimeoutMs) this.refuse(408, "the request body took too long");
        break;
      case State.Answer:
        if (now - this.lastActive > idleTimeoutMs) this.socket.destroy();
        break;
      case State.Closed:
        // Ended by this side: a peer that keeps its side open is not kept waiting on forever.
        if (now - this.#idleSince > keepAliveTimeoutMs) this.socket.destroy();
        break;
    }
  }
}
