// snitch-proxy's upstream client: HTTP/1.1 over plain TCP to the box's backends, with a pool of
// keep-alive connections per address. It replaced undici (bench/proxy: about a third less CPU per
// request, docs/BENCHMARKS.md) and does only what a reverse proxy needs: one request at a time
// per connection, the response streamed back with back-pressure, a bodiless request retried once
// on a new connection when a reused one turns out to have been closed by the backend.
import { connect, type Socket } from "node:net";
import { ReadSwitch } from "./read-switch.ts";
import { ChunkedDecoder, LAST_CHUNK, WireError, chunkHead, fieldLines, parseResponseHead, responseFraming, type Framing } from "./wire.ts";
import { ORIGIN_FAULT, ORIGIN_PROTOCOL, ORIGIN_RESET, ORIGIN_TIMEOUT, OriginError, checkResponseHead, type OriginAddress, type OriginCall, type OriginHandler, type OriginOptions, type OriginRequest } from "./origin-api.ts";

export * from "./origin-api.ts";

const MAX_RESPONSE_HEAD = 65_536;
/** Where every upstream read lands (see Connection): reads are handled one at a time. */
const READ_BUFFER = Buffer.allocUnsafe(65_536);
const CRLFCRLF = Buffer.from("\r\n\r\n");

const enum Phase {
  Head,
  Body,
  Done,
}

/** One request on one connection. */
class Call implements OriginCall {
  phase = Phase.Head;
  framing: Framing = { kind: "none" };
  remaining = 0;
  decoder: ChunkedDecoder | undefined;
  reusable = false;
  bodySent: boolean;
  /** Whether the backend sent anything for this request (else a reused connection may be retried). */
  answered = false;
  sentAt = 0;
  connection: Connection | undefined;
  retried = false;
  readonly #origins: Origins;
  readonly address: OriginAddress;
  readonly key: string;
  readonly request: OriginRequest;
  readonly handler: OriginHandler;

  constructor(origins: Origins, address: OriginAddress, key: string, request: OriginRequest, handler: OriginHandler) {
    this.#origins = origins;
    this.address = address;
    this.key = key;
    this.request = request;
    this.handler = handler;
    this.bodySent = request.body === null;
  }

  resume(): void {
    this.connection?.resume();
  }

  abort(): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    this.#origins.forgetCall(this);
    this.request.body?.stop();
    this.connection?.socket.destroy();
  }

  /** Ends the call with an error, unless it is over. */
  fail(error: OriginError): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    this.#origins.forgetCall(this);
    this.request.body?.stop();
    this.connection?.socket.destroy();
    this.handler.onError(error);
  }

  /** The response is complete: the connection goes back to the pool when it can serve another. */
  finish(): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    this.#origins.forgetCall(this);
    const connection = this.connection;
    if (connection) {
      connection.call = undefined;
      if (this.reusable && this.bodySent) this.#origins.release(connection);
      else connection.socket.destroy();
    }
    if (!this.bodySent) this.request.body?.stop();
    this.handler.onEnd();
  }
}

/** A connection to an upstream, reading responses for its current call. */
class Connection {
  readonly socket: Socket;
  readonly key: string;
  call: Call | undefined;
  /** Whether it has carried a whole exchange already (a failure before any answer may be a stale close). */
  reused = false;
  idleSince = 0;
  readonly #reads: ReadSwitch;
  /** An unfinished response head: the start of `#headStore`, whose rest is room to grow (doubled when full). */
  #head: Buffer | undefined;
  #headStore: Buffer | undefined;
  /** Bytes at the start of `#head` already searched for its end, in vain. */
  #headScanned = 0;
  readonly #origins: Origins;

  constructor(origins: Origins, address: OriginAddress, key: string) {
    this.#origins = origins;
    this.key = key;
    // Reads land in one shared buffer and go straight to #read, past the stream machinery of
    // 'data' events; nothing keeps a view of it (a partial head is copied, a body piece too).
    this.socket = connect({
      host: address.host,
      port: address.port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (length: number, buffer: Uint8Array) => {
          // A throw here would escape into the event loop and end the process with every
          // connection it serves: it ends this exchange only.
          try {
            this.#read((buffer as Buffer).subarray(0, length));
          } catch (error) {
            this.#fault(error, "reading the upstream's answer");
          }
          // Back-pressure pauses the socket itself (#deliver), not through this answer.
          return true;
        },
      },
    });
    this.#reads = new ReadSwitch(this.socket);
    this.socket.on("end", () => this.#guard(() => this.#ended(), "ending the upstream's answer"));
    this.socket.on("error", (error: NodeJS.ErrnoException) => this.#guard(() => this.#lost(error), "losing the upstream connection"));
    this.socket.on("close", () => this.#guard(() => this.#lost(undefined), "closing the upstream connection"));
  }

  #guard(run: () => void, where: string): void {
    try {
      run();
    } catch (error) {
      this.#fault(error, where);
    }
  }

  /** An exception while this connection's answer was handled: the connection and its call end. */
  #fault(error: unknown, where: string): void {
    this.socket.destroy();
    const call = this.call;
    this.call = undefined;
    this.#origins.fault(error, where);
    if (call === undefined) return;
    try {
      call.fail(new OriginError(ORIGIN_FAULT, `${where}: ${error instanceof Error ? error.message : String(error)}`, { cause: error }));
    } catch (again) {
      this.#origins.fault(again, `${where}, then failing the request`);
    }
  }

  #read(chunk: Buffer): void {
    const call = this.call;
    if (call === undefined || call.phase === Phase.Done) {
      // Nothing was asked: a backend talking out of turn cannot be trusted with the next request.
      this.socket.destroy();
      return;
    }
    call.answered = true;
    let at = 0;
    if (call.phase === Phase.Head) {
      const input = this.#head === undefined ? chunk : this.#appendHead(this.#head, chunk);
      at = this.#readHead(call, input);
      if (at < 0) return;
      chunk = input;
    }
    this.#readBody(call, chunk, at);
  }

  /** Reads heads (1xx ones skipped) from `input`; returns where the body starts, or -1. */
  #readHead(call: Call, input: Buffer): number {
    let from = 0;
    for (;;) {
      // A head trickled in small reads is searched once, not again from its start on each read.
      const searchFrom = from === 0 ? Math.max(0, this.#headScanned - 3) : from;
      const end = input.indexOf(CRLFCRLF, searchFrom);
      this.#origins.scannedBytes += (end < 0 ? input.length : end + 4) - searchFrom;
      if (end < 0) {
        if (input.length - from > MAX_RESPONSE_HEAD) {
          call.fail(new OriginError(ORIGIN_PROTOCOL, "the upstream's response head is too large"));
          return -1;
        }
        this.#keepHead(from === 0 ? input : input.subarray(from));
        return -1;
      }
      this.#head = this.#headStore = undefined;
      this.#headScanned = 0;
      if (end - from > MAX_RESPONSE_HEAD) {
        call.fail(new OriginError(ORIGIN_PROTOCOL, "the upstream's response head is too large"));
        return -1;
      }
      let head;
      let framing: Framing;
      try {
        head = parseResponseHead(input.toString("latin1", from, end));
        checkResponseHead(head);
        if (head.status === 101) throw new WireError(400, "the upstream switched protocols on a plain request");
        framing = responseFraming(call.request.method, head);
      } catch (error) {
        call.fail(new OriginError(ORIGIN_PROTOCOL, (error as Error).message, { cause: error }));
        return -1;
      }
      from = end + 4;
      // 100 Continue, 103 Early Hints: interim answers this proxy does not pass on.
      if (head.status < 200) continue;
      const connection = head.headers.connection;
      call.reusable = head.minor === 1 && framing.kind !== "close" && (connection === undefined || !/(?:^|,)\s*close\s*(?:,|$)/i.test(connection));
      call.framing = framing;
      call.phase = Phase.Body;
      if (framing.kind === "length") call.remaining = framing.length;
      else if (framing.kind === "chunked") call.decoder = new ChunkedDecoder((piece) => this.#deliver(call, piece));
      call.handler.onHead(head.status, head.headers);
      return from;
    }
  }

  /** Keeps an unfinished head, copied (reads land in a shared buffer) unless it is in `#headStore` already. */
  #keepHead(bytes: Buffer): void {
    const store = this.#headStore;
    if (store === undefined || bytes.buffer !== store.buffer || bytes.byteOffset !== store.byteOffset) {
      const fresh = Buffer.allocUnsafe(Math.max(1024, 2 * bytes.length));
      bytes.copy(fresh);
      this.#origins.copiedBytes += bytes.length;
      this.#headStore = fresh;
      bytes = fresh.subarray(0, bytes.length);
    }
    this.#head = bytes;
    this.#headScanned = bytes.length;
  }

  /** Adds a read to the unfinished head, in the room of `#headStore`; returns the head so far. */
  #appendHead(head: Buffer, chunk: Buffer): Buffer {
    const length = head.length + chunk.length;
    let store = this.#headStore;
    if (store === undefined || store.length < length) {
      store = Buffer.allocUnsafe(Math.max(length, 2 * (store?.length ?? head.length)));
      head.copy(store);
      this.#origins.copiedBytes += head.length;
      this.#headStore = store;
    }
    chunk.copy(store, head.length);
    this.#origins.copiedBytes += chunk.length;
    return store.subarray(0, length);
  }

  #deliver(call: Call, piece: Buffer): void {
    if (piece.length > 0 && call.phase === Phase.Body && !call.handler.onData(Buffer.from(piece))) this.#reads.pause();
  }

  /** Reads again after a pause for back-pressure. */
  resume(): void {
    this.#reads.resume();
  }

  #readBody(call: Call, chunk: Buffer, at: number): void {
    if (call.phase !== Phase.Body) return;
    const framing = call.framing;
    if (framing.kind === "none") {
      if (at < chunk.length) call.reusable = false;
      call.finish();
      return;
    }
    if (framing.kind === "length") {
      const take = Math.min(call.remaining, chunk.length - at);
      call.remaining -= take;
      this.#deliver(call, at === 0 && take === chunk.length ? chunk : chunk.subarray(at, at + take));
      if (call.remaining === 0) {
        if (at + take < chunk.length) call.reusable = false;
        call.finish();
      }
      return;
    }
    if (framing.kind === "chunked") {
      let end: number;
      try {
        end = (call.decoder as ChunkedDecoder).push(chunk, at);
      } catch (error) {
        call.fail(new OriginError(ORIGIN_PROTOCOL, `the upstream's chunked body: ${(error as Error).message}`, { cause: error }));
        return;
      }
      if ((call.decoder as ChunkedDecoder).done) {
        if (end < chunk.length) call.reusable = false;
        call.finish();
      }
      return;
    }
    this.#deliver(call, at === 0 ? chunk : chunk.subarray(at));
  }

  #ended(): void {
    const call = this.call;
    // A body delimited by the close of the connection is complete now.
    if (call?.phase === Phase.Body && call.framing.kind === "close") call.finish();
  }

  #lost(error: NodeJS.ErrnoException | undefined): void {
    this.#origins.dropIdle(this);
    const call = this.call;
    this.call = undefined;
    if (call === undefined || call.phase === Phase.Done) return;
    if (call.phase === Phase.Body && call.framing.kind === "close" && error === undefined) {
      call.finish();
      return;
    }
    // A pooled connection the backend closed as it was reused: send the request again, once, on a
    // new one, when it has no body that was (partly) sent already.
    if (this.reused && !call.answered && call.request.body === null && !call.retried) {
      call.retried = true;
      this.#origins.dispatch(call);
      return;
    }
    const code = error?.code ?? ORIGIN_RESET;
    call.fail(new OriginError(code, error ? `the upstream connection failed: ${error.message}` : "the upstream closed the connection before answering", { cause: error }));
  }
}

/**
 * The upstream client: keep-alive connections per address, reused last-in first-out (the warmest
 * first), closed after `keepAliveMs` idle. A request waits at most `headersTimeoutMs` for its
 * response's head; timeouts and idle connections are checked by one timer, not one per request.
 */
export class Origins {
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
    const key = `${address.host}:${String(address.port)}`;
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

