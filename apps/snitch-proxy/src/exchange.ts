// One request and its answer, whichever protocol carried it: snitch-proxy's own HTTP/1.1 engine
// (http1/front.ts) and node:http2's compatibility objects both present it this way, so routing,
// waking, forwarding, error pages and stats are written once (proxy.ts).
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { TLSSocket } from "node:tls";

/** Where a body's bytes go. `data` returns false to ask for a pause until the source's `resume()`. */
export interface BodySink {
  data(chunk: Buffer): boolean;
  end(): void;
  error(error: Error): void;
}

/** A request body, read only once somebody wants it (so nothing is lost while a unit wakes). */
export interface BodySource {
  /** Starts the flow into `sink`; called at most once. */
  start(sink: BodySink): void;
  /** Goes on after `sink.data` asked for a pause. */
  resume(): void;
  /** Stops reading: the body is not wanted any more. */
  stop(): void;
}

/** The answer side of an exchange. */
export interface Reply {
  /** Whether the status line and headers are on their way. */
  readonly headersSent: boolean;
  /** Whether the answer is over: ended, or cut off with its connection. */
  readonly done: boolean;
  /** The status sent, or 200 before `writeHead`. */
  readonly statusCode: number;
  writeHead(status: number, headers: OutgoingHttpHeaders): void;
  /** Sends part of the body; false asks the writer to wait for `onDrain`. */
  write(chunk: Buffer): boolean;
  /** Calls `listener` once when the peer has taken what was written. */
  onDrain(listener: () => void): void;
  end(body?: string | Buffer): void;
  /** Cuts the answer off (and with HTTP/1.1 its connection). */
  destroy(): void;
  /** Calls `listener` once when the answer is over, sent or not. */
  onClose(listener: () => void): void;
}

/** A request on its way through snitch-proxy. */
export interface Exchange {
  readonly method: string;
  /** The request target (path and query). */
  readonly url: string;
  /** Lower-case names; HTTP/2 pseudo-headers included. */
  readonly headers: IncomingHttpHeaders;
  /** The client's TLS connection: its SNI name and address. */
  readonly socket: TLSSocket;
  /** The body, or null when the request has none. */
  readonly body: BodySource | null;
  readonly reply: Reply;
}

/** An exchange over node:http2's compatibility objects. */
export function http2Exchange(req: Http2ServerRequest, res: Http2ServerResponse): Exchange {
  // A stream whose headers came with END_STREAM has no body, whatever its method.
  const hasBody = !req.stream.endAfterHeaders;
  return {
    method: req.method,
    url: req.url,
    headers: req.headers,
    socket: req.socket as TLSSocket,
    body: hasBody ? streamBody(req) : null,
    reply: {
      get headersSent() {
        return res.headersSent;
      },
      get done() {
        return res.writableEnded || res.destroyed;
      },
      get statusCode() {
        return res.statusCode;
      },
      writeHead: (status, headers) => void res.writeHead(status, headers),
      write: (chunk) => res.write(chunk),
      onDrain: (listener) => void res.once("drain", listener),
      end: (body) => {
        if (body === undefined) res.end();
        else res.end(body);
      },
      destroy: () => void res.destroy(),
      onClose: (listener) => void res.once("close", listener),
    },
  };
}

/** A body read from a readable stream, paused until started. */
function streamBody(stream: Http2ServerRequest): BodySource {
  stream.pause();
  return {
    start(sink) {
      stream.on("data", (chunk: Buffer) => {
        if (!sink.data(chunk)) stream.pause();
      });
      stream.once("end", () => sink.end());
      stream.once("error", (error) => sink.error(error));
      stream.once("aborted", () => sink.error(new Error("the client went away")));
      stream.resume();
    },
    resume: () => void stream.resume(),
    stop: () => void stream.resume(),
  };
}
