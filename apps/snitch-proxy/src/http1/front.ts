// snitch-proxy's HTTP/1.1 side, on the client's TLS socket: it reads requests one after another
// (pipelined ones wait their turn), hands each on as an Exchange, streams its body with
// back-pressure, and writes the answer with one write per burst (head and body corked together).
// It replaced node:http's server (reached through http2's allowHTTP1), whose per-request objects
// cost more than the proxying itself (bench/proxy, docs/BENCHMARKS.md). Timeouts are checked by one
// timer for all connections, as node:http does: headers (slowloris), whole request, keep-alive, idle.
// Each connection's own state machine is in connection.ts.
import type { IncomingHttpHeaders } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Exchange } from "../exchange.ts";
import type { PageStatus } from "../pages.ts";
import { Connection } from "./connection.ts";

/** Limits of the HTTP/1.1 side. */
export interface FrontOptions {
  /** Largest request head (request line and headers), bytes; larger gets 431. */
  readonly maxHeaderBytes: number;
  /** Time from a request's first byte to the end of its head, ms (slowloris); then 408. */
  readonly headersTimeoutMs: number;
  /** Time from a request's first byte to the end of its body, ms; then 408. */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this, ms. */
  readonly keepAliveTimeoutMs: number;
  /** A connection with nothing read or written for this long is closed, ms. */
  readonly idleTimeoutMs: number;
  /** How often the timeouts are checked, ms. */
  readonly checkingIntervalMs: number;
}

/** A websocket (or other) upgrade request, handed over with its socket. */
export interface UpgradeRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly socket: TLSSocket;
}

/** Where the front hands what it read. */
export interface FrontHandlers {
  exchange(exchange: Exchange): void;
  /** Gets the socket for good, with the bytes read past the request's head. */
  upgrade(request: UpgradeRequest, head: Buffer): void;
  /** A request refused by the front itself (malformed, too large, too slow). */
  refused(status: PageStatus, reason: string): void;
  /** An exception while one connection was served: that connection is destroyed, the others go on. */
  fault(error: unknown, where: string): void;
}

/** The HTTP/1.1 side of snitch-proxy: every client connection that chose HTTP/1.1. */
export class Http1Front {
  readonly #connections = new Set<Connection>();
  readonly #checker: NodeJS.Timeout;
  /** Stopping: connections close after the answer in flight. */
  stopping = false;
  /** Bytes searched for the end of a request head, over all connections (a measure of work). */
  scannedBytes = 0;
  /** Bytes copied while gathering request heads that came in pieces (a measure of work). */
  copiedBytes = 0;

  readonly options: FrontOptions;
  readonly handlers: FrontHandlers;

  constructor(options: FrontOptions, handlers: FrontHandlers) {
    this.options = options;
    this.handlers = handlers;
    this.#checker = setInterval(() => this.#check(), options.checkingIntervalMs);
    this.#checker.unref();
  }

  /** Serves a TLS socket that negotiated HTTP/1.1 (or no ALPN). */
  attach(socket: TLSSocket): void {
    const connection = new Connection(this, socket);
    this.#connections.add(connection);
  }

  /** The connections served. */
  get size(): number {
    return this.#connections.size;
  }

  /** Drops a connection that closed or was handed over. */
  forget(connection: Connection): void {
    this.#connections.delete(connection);
  }

  /** Stops the timer and closes connections that are between requests; the others close after their answer. */
  stop(): void {
    this.stopping = true;
    clearInterval(this.#checker);
    for (const connection of this.#connections) connection.closeIfIdle();
  }

  #check(): void {
    const now = performance.now();
    for (const connection of this.#connections) {
      try {
        connection.check(now);
      } catch (error) {
        connection.fault(error, "checking a connection's deadlines");
      }
    }
  }
}

