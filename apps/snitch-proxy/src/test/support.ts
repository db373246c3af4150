import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect as h2connect, type ClientHttp2Session, type IncomingHttpHeaders as H2Headers } from "node:http2";
import { request as httpsRequest } from "node:https";
import { connect as tlsConnect, type PeerCertificate } from "node:tls";
import type { AddressInfo, Server as NetServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalCa } from "@coyote/actuator-snickers";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { writeFileAtomic } from "@coyote/spec";
import { certificateFile } from "../certs.ts";

/** A state folder with a local CA, for one test file. */
export interface Sandbox {
  readonly stateDir: string;
  readonly ca: LocalCa;
  readonly logger: CoyoteLogger;
  /** Issues a certificate for names and stores it where snitch-proxy looks (`*.x` allowed). */
  certify(...names: string[]): Promise<void>;
  /** Writes `proxy/routes.json`. */
  routes(routes: readonly unknown[], limits?: { maxConnections: number; maxConnectionsPerAddress?: number }): Promise<void>;
  cleanup(): Promise<void>;
}

/** Makes a sandbox state folder. */
export async function sandbox(): Promise<Sandbox> {
  const stateDir = await mkdtemp(join(tmpdir(), "snitch-"));
  await mkdir(join(stateDir, "proxy", "certs"), { recursive: true, mode: 0o700 });
  const ca = await LocalCa.open(join(stateDir, "proxy", "ca"), "test");
  const logger = createLogger({ component: "snitch-proxy", file: join(stateDir, "logs", "snitch-proxy.log"), level: "debug" });
  return {
    stateDir,
    ca,
    logger,
    async certify(...names) {
      const issued = ca.issue(names);
      const first = names[0] ?? "";
      await writeFileAtomic(certificateFile(join(stateDir, "proxy", "certs"), first), issued.keyPem + issued.chainPem, { mode: 0o600 });
    },
    async routes(routes, limits) {
      await writeFileAtomic(join(stateDir, "proxy", "routes.json"), JSON.stringify({ schemaVersion: 1, generatedAt: new Date().toISOString(), ...(limits ? { limits } : {}), routes }));
    },
    async cleanup() {
      await logger.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** A backend HTTP server on loopback. */
export interface Backend {
  readonly server: Server;
  readonly address: string;
  readonly port: number;
  /** The requests it received, newest last. */
  readonly seen: { method: string; url: string; headers: IncomingMessage["headers"]; body: string }[];
  close(): Promise<void>;
}

/**
 * Starts a backend that answers `name` and echoes what it got, unless `handler` answers instead.
 * @param handler may answer itself and return true.
 */
export async function backend(name: string, handler?: (req: IncomingMessage, res: ServerResponse, body: string) => boolean): Promise<Backend> {
  const seen: Backend["seen"] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      if (handler?.(req, res, body) === true) return;
      const text = `${name} ${req.method ?? ""} ${req.url ?? ""} ${body}`;
      res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(text) });
      res.end(text);
    });
  });
  server.keepAliveTimeout = 30_000;
  const { port, address, close } = await listenTracked(server);
  return { server, port, address, seen, close };
}

/** A server listening on loopback whose close() ends every connection it has. */
export interface Listening {
  readonly port: number;
  /** `127.0.0.1:port`. */
  readonly address: string;
  readonly close: () => Promise<void>;
}

/**
 * Listens on a free port of 127.0.0.1 and keeps track of the server's sockets: upgraded ones leave
 * the server's own bookkeeping, and close() must end them all.
 */
export async function listenTracked(server: NetServer): Promise<Listening> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${String(port)}`,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** One answer a test client got. */
export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** An HTTP/1.1 request over TLS with SNI `host` to the proxy at `port`, trusting the CA. */
export function get1(port: number, host: string, ca: string, path = "/", options: { method?: string; body?: string; headers?: Record<string, string>; servername?: string; agent?: false } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: "127.0.0.1",
      port,
      path,
      method: options.method ?? "GET",
      servername: options.servername ?? host,
      headers: { host, ...options.headers },
      ca,
      agent: options.agent ?? false,
      timeout: 10_000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("test client timed out")));
    req.on("error", reject);
    req.end(options.body);
  });
}

/** An HTTP/2 session to the proxy with SNI `host`. */
export function session2(port: number, host: string, ca: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = h2connect(`https://${host}:${port}`, { ca, servername: host, createConnection: () => tlsConnect({ host: "127.0.0.1", port, servername: host, ca, ALPNProtocols: ["h2"] }) });
    session.once("connect", () => resolve(session));
    session.once("error", reject);
  });
}

/** One HTTP/2 request on a session. */
export function get2(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":path": path, ":method": body === undefined ? "GET" : "POST", ...headers });
    let responseHeaders: H2Headers = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => (responseHeaders = h));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve({ status: Number(responseHeaders[":status"]), headers: responseHeaders, body: Buffer.concat(chunks).toString("utf8") }));
    stream.on("error", reject);
    stream.end(body);
  });
}

/** The certificate the proxy serves for SNI `servername`, or the TLS error it gives. */
export function peerCertificate(port: number, servername: string | undefined, ca: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, ca, ...(servername === undefined ? {} : { servername }), ALPNProtocols: ["http/1.1"] }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.setTimeout(5000, () => socket.destroy(new Error("handshake timed out")));
    socket.on("error", reject);
  });
}

/** Writes a file, making its folder. */
export async function put(path: string, content: string): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, content);
}
