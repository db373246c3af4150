// One upstream connection of the client (origin.ts) and the request it carries: writing nothing
// itself, it reads the response (1xx skipped, every head checked before a client sees it), streams
// the body with back-pressure, and reports back to the pool that owns it.
import { connect, type Socket } from "node:net";
import { ReadSwitch } from "./read-switch.ts";
import { ChunkedDecoder, WireError, parseResponseHead, responseFraming, type Framing } from "./wire.ts";
import { ORIGIN_FAULT, ORIGIN_PROTOCOL, ORIGIN_RESET, OriginError, checkResponseHead, type OriginAddress, type OriginCall, type OriginHandler, type OriginRequest } from "./origin-api.ts";

/** What a connection and its call need of the pool that owns them (Origins). */
export interface Pool {
  /** Bytes searched for the end of a response head (a measure of work). */
  scannedBytes: number;
  /** Bytes copied while gathering response heads that came in pieces (a measure of work). */
  copiedBytes: number;
  forgetCall(call: Call): void;
  release(connection: Connection): void;
  dropIdle(connection: Connection): void;
  dispatch(call: Call): void;
  fault(error: unknown, where: string): void;
}

const MAX_RESPONSE_HEAD = 65_536;
/** Where every upstream read lands (see Connection): reads are handled one at a time. */
const READ_BUFFER = Buffer.allocUnsafe(65_536);
const CRLFCRLF = Buffer.from("\r\n\r\n");

export const enum Phase {
  Head,
  Body,
  Done,
}

/** One request on one connection. */
export class Call implements OriginCall {
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
  readonly #origins: Pool;
  readonly address: OriginAddress;
  readonly key: string;
  readonly request: OriginRequest;
  readonly handler: OriginHandler;

  constructor(origins: Pool, address: OriginAddress, key: string, request: OriginRequest, handler: OriginHandler) {
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
export class Connection {
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
  readonly #origins: Pool;

  constructor(origins: Pool, address: OriginAddress, key: string) {
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
      call.reusable = head.minor === 1 && framing.kind !== "close" && (connection === undefined || !/(?:^|,)[ \t]*close[ \t]*(?:,|$)/i.test(connection));
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
