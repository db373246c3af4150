// The only way out of a test machine during its install phase: an HTTP proxy on the host that
// forwards to Debian's archive and the npm registry and refuses everything else. The machine has
// no route beyond its own network, so a program that ignores the proxy reaches nothing.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";

/** The hosts a machine may reach while it installs, with their ports. */
export const ALLOWED_ORIGINS: ReadonlyMap<string, readonly number[]> = new Map([
  ["deb.debian.org", [80, 443]],
  ["registry.npmjs.org", [443]],
]);

/** How long a connection through the proxy may stay silent before it is cut. */
const IDLE_MS = 120_000;
/** The most one connection through the proxy may carry (a Node.js tarball is ~30 MB). */
const MAX_BYTES = 1024 * 1024 * 1024;

/** What went through the proxy: each request's target and whether it was let through. */
export interface ProxyRecord {
  readonly method: string;
  readonly target: string;
  readonly allowed: boolean;
}

/** A running allowlist proxy. */
export interface AllowlistProxy {
  /** `http://<host>:<port>`, for the machine's `http_proxy` and `https_proxy`. */
  readonly url: string;
  /** Every request so far. */
  readonly records: readonly ProxyRecord[];
  close(): Promise<void>;
}

/** Whether `host:port` is an allowed origin. */
export function allowed(host: string, port: number): boolean {
  return ALLOWED_ORIGINS.get(host.toLowerCase())?.includes(port) ?? false;
}

/** Cuts a tunnel that stays silent too long or carries more than the cap. */
function guard(a: Duplex, b: Socket): void {
  let bytes = 0;
  const count = (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > MAX_BYTES) {
      a.destroy();
      b.destroy();
    }
  };
  a.on("data", count);
  b.on("data", count);
  b.setTimeout(IDLE_MS, () => {
    a.destroy();
    b.destroy();
  });
  for (const side of [a, b]) {
    side.on("error", () => {
      a.destroy();
      b.destroy();
    });
    side.on("close", () => {
      a.destroy();
      b.destroy();
    });
  }
}

function refuse(res: ServerResponse, status: number, why: string): void {
  res.writeHead(status, { "content-type": "text/plain", connection: "close" }).end(`${why}\n`);
}

/** Forwards a plain HTTP request in absolute form (`GET http://deb.debian.org/...`). */
function forward(records: ProxyRecord[], req: IncomingMessage, res: ServerResponse): void {
  let url: URL;
  try {
    url = new URL(req.url ?? "");
  } catch {
    refuse(res, 400, "the proxy takes absolute URLs only");
    return;
  }
  const port = url.port === "" ? 80 : Number(url.port);
  const ok = url.protocol === "http:" && allowed(url.hostname, port);
  records.push({ method: req.method ?? "", target: `${url.hostname}:${String(port)}`, allowed: ok });
  if (!ok) {
    refuse(res, 403, `the test machine may not reach ${url.hostname}:${String(port)}`);
    return;
  }
  const headers = { ...req.headers };
  delete headers["proxy-connection"];
  delete headers["proxy-authorization"];
  const upstream = request({ host: url.hostname, port, method: req.method, path: `${url.pathname}${url.search}`, headers, timeout: IDLE_MS, agent: false }, (answer) => {
    let bytes = 0;
    answer.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_BYTES) answer.destroy(new Error("answer too large"));
    });
    answer.on("error", () => res.destroy());
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on("timeout", () => upstream.destroy(new Error("upstream timed out")));
  upstream.on("error", (error) => {
    if (!res.headersSent) refuse(res, 502, `upstream: ${error.message}`);
    else res.destroy();
  });
  req.pipe(upstream);
}

/** Tunnels `CONNECT host:port` (HTTPS) to an allowed origin. */
function tunnel(records: ProxyRecord[], tunnels: Set<Duplex>, req: IncomingMessage, client: Duplex, head: Buffer): void {
  tunnels.add(client);
  client.once("close", () => tunnels.delete(client));
  // A machine that resets its connection (a refused CONNECT it hangs up on) must not crash the test.
  client.on("error", () => client.destroy());
  const match = /^([a-z0-9.-]+):(\d{1,5})$/i.exec(req.url ?? "");
  const host = match?.[1] ?? "";
  const port = Number(match?.[2] ?? 0);
  const ok = match !== null && allowed(host, port);
  records.push({ method: "CONNECT", target: req.url ?? "", allowed: ok });
  if (!ok) {
    client.end(`HTTP/1.1 403 Forbidden\r\nconnection: close\r\n\r\nthe test machine may not reach ${req.url ?? ""}\n`);
    return;
  }
  const upstream = connect({ host, port });
  upstream.once("connect", () => {
    client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.once("error", () => {
    if (client.writable) client.end("HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\n\r\n");
  });
  guard(client, upstream);
}

/**
 * Starts the allowlist proxy on `host` (the gateway address of the machine's network, never a
 * public address) on a port the system picks.
 */
export async function startAllowlistProxy(host: string): Promise<AllowlistProxy> {
  const records: ProxyRecord[] = [];
  const tunnels = new Set<Duplex>();
  const server: Server = createServer((req, res) => forward(records, req, res));
  server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => tunnel(records, tunnels, req, socket, head));
  server.headersTimeout = 30_000;
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, resolve);
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("allowlist proxy: the server has no port");
  return {
    url: `http://${host}:${String(address.port)}`,
    records,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of tunnels) socket.destroy();
      }),
  };
}
