// A test-only raw HTTP/1.1 client and backends for the acceptance tests (h1.test.ts): a TLS client that writes exact
// bytes and reads responses by their own framing, and loopback backends that record exactly what
// the proxy sent them.
import { createHash } from "node:crypto";
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { listenTracked } from "./support.ts";

/** One response as read off the wire. */
export interface RawResponse {
  /** `HTTP/1.1` or `HTTP/1.0`. */
  readonly version: string;
  readonly status: number;
  /** The header lines in order, names lower-cased. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer;
  /** How the body was delimited. */
  readonly framing: "none" | "length" | "chunked" | "close";
}

/** The first value of a header, or undefined. */
export function header(response: RawResponse, name: string): string | undefined {
  return response.headers.find(([n]) => n === name)?.[1];
}

/** All values of a header, one per line. */
export function headerLines(response: RawResponse, name: string): string[] {
  return response.headers.filter(([n]) => n === name).map(([, v]) => v);
}

/** The sha256 of bytes, hex. */
export function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A framing error in what the peer sent. */
class FramingError extends Error {}

const HEAD_END = Buffer.from("\r\n\r\n");

/** Decodes a chunked body starting at `at`: the body and where it ends, undefined when incomplete. */
function decodeChunked(buf: Buffer, at: number): { body: Buffer; end: number } | undefined {
  const parts: Buffer[] = [];
  let pos = at;
  for (let guard = 0; guard < 1_000_000; guard++) {
    const eol = buf.indexOf("\r\n", pos);
    if (eol < 0) return undefined;
    const sizeText = buf.subarray(pos, eol).toString("latin1").split(";")[0]?.trim() ?? "";
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText)) throw new FramingError(`bad chunk size ${JSON.stringify(sizeText)}`);
    const size = parseInt(sizeText, 16);
    if (size === 0) {
      // Trailers, then an empty line.
      let line = eol + 2;
      for (let t = 0; t < 1000; t++) {
        const next = buf.indexOf("\r\n", line);
        if (next < 0) return undefined;
        if (next === line) return { body: Buffer.concat(parts), end: next + 2 };
        line = next + 2;
      }
      throw new FramingError("too many trailer lines");
    }
    if (buf.length < eol + 2 + size + 2) return undefined;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    if (buf.subarray(eol + 2 + size, eol + 4 + size).toString("latin1") !== "\r\n") throw new FramingError("chunk not followed by CRLF");
    pos = eol + 4 + size;
  }
  throw new FramingError("too many chunks");
}

/**
 * Parses one response at the start of `buf`: the response and the bytes it took, undefined when
 * more bytes are needed. `ended` says the peer closed (ends a close-delimited body).
 */
export function parseResponse(buf: Buffer, ended: boolean, head = false): { response: RawResponse; used: number } | undefined {
  const headEnd = buf.indexOf(HEAD_END);
  if (headEnd < 0) return undefined;
  const lines = buf.subarray(0, headEnd).toString("latin1").split("\r\n");
  const statusLine = lines[0] ?? "";
  const m = /^(HTTP\/\d\.\d) (\d{3})(?: .*)?$/.exec(statusLine);
  if (!m) throw new FramingError(`not a status line: ${JSON.stringify(statusLine.slice(0, 80))}`);
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new FramingError(`not a header line: ${JSON.stringify(line.slice(0, 80))}`);
    headers.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]);
  }
  const version = m[1] ?? "";
  const status = Number(m[2]);
  const bodyStart = headEnd + 4;
  const base = { version, status, headers };
  if (head || (status >= 100 && status < 200) || status === 204 || status === 304) {
    return { response: { ...base, body: Buffer.alloc(0), framing: "none" }, used: bodyStart };
  }
  const te = headers.find(([n]) => n === "transfer-encoding")?.[1];
  if (te !== undefined && /(^|,)\s*chunked\s*$/i.test(te)) {
    const decoded = decodeChunked(buf, bodyStart);
    if (!decoded) return undefined;
    return { response: { ...base, body: decoded.body, framing: "chunked" }, used: decoded.end };
  }
  const cl = headers.find(([n]) => n === "content-length")?.[1];
  if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) throw new FramingError(`bad content-length ${cl}`);
    const length = Number(cl);
    if (buf.length < bodyStart + length) return undefined;
    return { response: { ...base, body: Buffer.from(buf.subarray(bodyStart, bodyStart + length)), framing: "length" }, used: bodyStart + length };
  }
  if (!ended) return undefined;
  return { response: { ...base, body: Buffer.from(buf.subarray(bodyStart)), framing: "close" }, used: buf.length };
}

/** A raw HTTP/1.1-over-TLS client connection. */
export class Wire {
  readonly socket: TLSSocket;
  #buf = Buffer.alloc(0);
  #ended = false;
  #wake: (() => void)[] = [];

  private constructor(socket: TLSSocket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, chunk]);
      this.#notify();
    });
    const end = () => {
      this.#ended = true;
      this.#notify();
    };
    socket.on("end", end);
    socket.on("close", end);
    // A reset after the proxy's last byte is a close like any other here.
    socket.on("error", end);
  }

  /** Connects to the proxy at `port` with SNI `host`, trusting `ca`, offering only HTTP/1.1. */
  static open(port: number, host: string, ca: string): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: "127.0.0.1", port, servername: host, ca, ALPNProtocols: ["http/1.1"] });
      const fail = (error: Error) => reject(error);
      socket.once("error", fail);
      socket.once("secureConnect", () => {
        socket.off("error", fail);
        resolve(new Wire(socket));
      });
    });
  }

  /** Whether the peer has closed its side. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Bytes received and not yet taken by a response. */
  get pending(): Buffer {
    return this.#buf;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const w of wake) w();
  }

  /** Waits for more bytes or the end, at most `ms`; false on timeout. */
  #next(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = this.#wake.filter((w) => w !== wake);
        resolve(false);
      }, ms);
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#wake.push(wake);
    });
  }

  /** Writes exact bytes. */
  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data);
  }

  /**
   * Reads the next response (a 1xx is a response of its own).
   * @param head the request was HEAD: no body follows.
   * @throws when the connection closes first, the framing is broken, or `timeoutMs` passes.
   */
  async response(options: { head?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
    const deadline = Date.now() + (options.timeoutMs ?? 5000);
    for (let guard = 0; guard < 100_000; guard++) {
      const parsed = parseResponse(this.#buf, this.#ended, options.head ?? false);
      if (parsed) {
        this.#buf = this.#buf.subarray(parsed.used);
        return parsed.response;
      }
      if (this.#ended) throw new Error(`connection closed before a whole response; got ${JSON.stringify(this.#buf.toString("latin1").slice(0, 120))}`);
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.#next(left))) {
        throw new Error(`no whole response in time; got ${JSON.stringify(this.#buf.toString("latin1").slice(0, 120))}`);
      }
    }
    throw new Error("response: too many reads");
  }

  /** Waits until the peer closes the connection; true when it did within `ms`. */
  async closed(ms = 2000): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (let guard = 0; guard < 100_000 && !this.#ended; guard++) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.#next(left);
    }
    return this.#ended;
  }

  /** Writes a request and reads its response. */
  async roundTrip(request: string | Buffer, options: { head?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
    this.write(request);
    return this.response(options);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A GET request's bytes. */
export function getRequest(host: string, path: string, extra = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;
}

/** What a recording backend received in one request. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  /** Raw header lines in order, names as sent. */
  readonly rawHeaders: readonly (readonly [string, string])[];
  readonly headers: IncomingMessage["headers"];
  readonly body: Buffer;
  /** Which upstream connection carried it (1, 2, ...). */
  readonly connection: number;
}

/** A node:http backend on loopback that records every request with its raw bytes. */
export interface RecordingBackend {
  readonly server: HttpServer;
  readonly address: string;
  readonly seen: SeenRequest[];
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * Starts a recording node:http backend. By default it answers 200 with the text
 * `<name> <method> <url>` and a Content-Length; `handler` may answer instead (returning true).
 */
export async function recordingBackend(name: string, handler?: (req: IncomingMessage, res: ServerResponse, body: Buffer) => boolean, keepAliveTimeout = 30_000): Promise<RecordingBackend> {
  const seen: SeenRequest[] = [];
  const ids = new WeakMap<Socket, number>();
  let count = 0;
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const rawHeaders: [string, string][] = [];
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) rawHeaders.push([req.rawHeaders[i] ?? "", req.rawHeaders[i + 1] ?? ""]);
      seen.push({ method: req.method ?? "", url: req.url ?? "", httpVersion: req.httpVersion, rawHeaders, headers: req.headers, body, connection: ids.get(req.socket) ?? 0 });
      if (handler?.(req, res, body) === true) return;
      const text = `${name} ${req.method ?? ""} ${req.url ?? ""}`;
      res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(text) });
      res.end(text);
    });
  });
  server.keepAliveTimeout = keepAliveTimeout;
  server.on("connection", (socket: Socket) => {
    count++;
    ids.set(socket, count);
  });
  const { address, close } = await listenTracked(server);
  return { server, address, seen, connections: () => count, close };
}

/** One request as a raw backend parsed it. */
export interface RawRequest {
  readonly method: string;
  readonly path: string;
  readonly head: string;
  readonly body: Buffer;
}

/** A node:net backend that answers exact bytes. */
export interface RawBackend {
  readonly address: string;
  readonly seen: RawRequest[];
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * Starts a raw backend: it parses requests (Content-Length bodies only) one after another on each
 * connection and calls `answer`, which writes whatever bytes it likes (and may end the socket).
 */
export async function rawBackend(answer: (socket: Socket, request: RawRequest) => void): Promise<RawBackend> {
  const seen: RawRequest[] = [];
  let count = 0;
  const server: NetServer = createNetServer((socket) => {
    count++;
    socket.on("error", () => socket.destroy());
    let buf = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (let guard = 0; guard < 1000 && !socket.destroyed; guard++) {
        const end = buf.indexOf(HEAD_END);
        if (end < 0) return;
        const head = buf.subarray(0, end).toString("latin1");
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? "0");
        if (buf.length < end + 4 + length) return;
        const body = Buffer.from(buf.subarray(end + 4, end + 4 + length));
        buf = buf.subarray(end + 4 + length);
        const [method = "", path = ""] = head.split("\r\n")[0]?.split(" ") ?? [];
        const request = { method, path, head, body };
        seen.push(request);
        answer(socket, request);
      }
    });
  });
  const { address, close } = await listenTracked(server);
  return { address, seen, connections: () => count, close };
}
