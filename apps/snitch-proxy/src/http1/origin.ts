// snitch-proxy's upstream client: HTTP/1.1 over plain TCP to the box's backends, with a pool of
// keep-alive connections per address. It replaced undici (bench/proxy: about a third less CPU per
// request, docs/BENCHMARKS.md) and does only what a reverse proxy needs: one request at a time
// per connection, the response streamed back with back-pressure, a bodiless request retried once
// on a new connection when a reused one turns out to have been closed by the backend.
import { LAST_CHUNK, chunkHead, fieldLines } from "./wire.ts";
import { ORIGIN_RESET, ORIGIN_TIMEOUT, OriginError, type OriginAddress, type OriginCall, type OriginHandler, type OriginOptions, type OriginRequest } from "./origin-api.ts";
import { Call, Connection, Phase, type Pool } from "./origin-connection.ts";

export * from "./origin-api.ts";

/** The pool key of each address object (the proxy resolves a route to the same object every time). */
const KEYS = new WeakMap<OriginAddress, string>();

/** `host:port`, made once per address object rather than once per request. */
function keyOf(address: OriginAddress): string {
  let key = KEYS.get(address);
  if (key === undefined) {
    key = `${address.host}:${String(address.port)}`;
    KEYS.set(address, key);
  }
  return key;
}

/**
 * The upstream client: keep-alive connections per address, reused last-in first-out (the warmest
 * first), closed after `keepAliveMs` idle. A request waits at most `headersTimeoutMs` for its
 * response's head; timeouts and idle connections are checked by one timer, not one per request.
 */
export class Origins implements Pool {
  readonly #options: Required<OriginOptions>;
  readonly #idle = new Map<string, Connection[]>();
  readonly #calls = new Set<Call>();
  readonly #sweeper: NodeJS.Timeout;
  #closed = false;
  /** Bytes searched for the end of a response head, over all connections (a measure of work). */
  scannedBytes = 0;
  /** Bytes copied while gathering response heads that came in pieces (a measure of work). */
  copiedBytes = 0;

  constructor(options: OriginOptions) {
    this.#options = { keepAliveMs: 4000, maxIdlePerAddress: 256, maxAddresses: 1024, onFault: () => undefined, ...options };
    const every = Math.max(25, Math.min(1000, Math.floor(Math.min(this.#options.headersTimeoutMs, this.#options.keepAliveMs) / 4)));
    this.#sweeper = setInterval(() => this.#sweep(), every);
    this.#sweeper.unref();
  }

  /** Sends a request; the handler hears the response or one error. */
  send(address: OriginAddress, request: OriginRequest, handler: OriginHandler): OriginCall {
    const key = keyOf(address);
    const call = new Call(this, address, key, request, handler);
    if (this.#closed) {
      queueMicrotask(() => call.fail(new OriginError(ORIGIN_RESET, "the proxy is stopping")));
      return call;
    }
    this.dispatch(call);
    return call;
  }

  /** Puts a call on a connection (a pooled one unless it is a retry) and writes the request. */
  dispatch(call: Call): void {
    let connection: Connection | undefined;
    if (!call.retried) {
      const idle = this.#idle.get(call.key);
      connection = idle?.pop();
    }
    // A pooled connection was made to read again when it was released.
    connection ??= new Connection(this, call.address, call.key);
    connection.call = call;
    call.connection = connection;
    call.phase = Phase.Head;
    call.answered = false;
    call.sentAt = performance.now();
    this.#calls.add(call);
    const { request } = call;
    const socket = connection.socket;
    const chunked = request.body !== null && request.headers["content-length"] === undefined;
    const head = `${request.method} ${request.path} HTTP/1.1\r\n${fieldLines(request.headers)}${chunked ? "transfer-encoding: chunked\r\n" : ""}\r\n`;
    socket.write(head, "latin1");
    const body = request.body;
    if (body === null) return;
    body.start({
      data(chunk) {
        if (call.phase === Phase.Done || chunk.length === 0) return true;
        let more: boolean;
        if (chunked) {
          socket.cork();
          socket.write(chunkHead(chunk.length), "latin1");
          socket.write(chunk);
          more = socket.write("\r\n", "latin1");
          socket.uncork();
        } else {
          more = socket.write(chunk);
        }
        if (!more) socket.once("drain", () => body.resume());
        return more;
      },
      end() {
        if (call.phase === Phase.Done && call.connection?.socket !== socket) return;
        if (chunked) socket.write(LAST_CHUNK, "latin1");
        call.bodySent = true;
      },
      error(error) {
        call.fail(new OriginError(ORIGIN_RESET, `the request body failed: ${error.message}`, { cause: error }));
      },
    });
  }

  /** Back to the pool, or closed when the pool is full or the client is stopping. */
  release(connection: Connection): void {
    connection.reused = true;
    // Reading again, if back-pressure paused it: an idle connection must notice its backend closing.
    connection.resume();
    if (this.#closed) {
      connection.socket.destroy();
      return;
    }
    let idle = this.#idle.get(connection.key);
    if (idle === undefined) {
      if (this.#idle.size >= this.#options.maxAddresses) {
        const [oldestKey, oldest] = this.#idle.entries().next().value as [string, Connection[]];
        this.#idle.delete(oldestKey);
        for (const one of oldest) one.socket.destroy();
      }
      idle = [];
      this.#idle.set(connection.key, idle);
    }
    if (idle.length >= this.#options.maxIdlePerAddress) {
      connection.socket.destroy();
      return;
    }
    connection.idleSince = performance.now();
    idle.push(connection);
  }

  /** Takes a connection that closed out of the pool. */
  dropIdle(connection: Connection): void {
    const idle = this.#idle.get(connection.key);
    if (idle === undefined) return;
    const at = idle.indexOf(connection);
    if (at >= 0) idle.splice(at, 1);
  }

  forgetCall(call: Call): void {
    this.#calls.delete(call);
  }

  /** Reports an exception raised while one connection's answer was handled. */
  fault(error: unknown, where: string): void {
    try {
      this.#options.onFault(error, where);
    } catch {
      // The report itself failed: nothing more can be done for this one connection.
    }
  }

  #sweep(): void {
    const now = performance.now();
    for (const call of this.#calls) {
      if (call.phase === Phase.Head && now - call.sentAt > this.#options.headersTimeoutMs) {
        try {
          call.fail(new OriginError(ORIGIN_TIMEOUT, `the upstream did not answer within ${String(this.#options.headersTimeoutMs)} ms`));
        } catch (error) {
          // One request's timeout answer failed: the timer goes on for the others.
          call.connection?.socket.destroy();
          this.fault(error, "answering an upstream timeout");
        }
      }
    }
    for (const [key, idle] of this.#idle) {
      // Oldest first: the stack's bottom has waited longest.
      while (idle.length > 0 && now - (idle[0] as Connection).idleSince > this.#options.keepAliveMs) (idle.shift() as Connection).socket.destroy();
      if (idle.length === 0) this.#idle.delete(key);
    }
  }

  /** Closes every pooled connection and fails the requests in flight. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const idle of this.#idle.values()) for (const connection of idle) connection.socket.destroy();
    this.#idle.clear();
    for (const call of [...this.#calls]) call.fail(new OriginError(ORIGIN_RESET, "the proxy is stopping"));
  }
}

