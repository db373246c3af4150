// Upgrades and tunnels have deadlines like every other connection state, refused ones are
// destroyed, and h2c is never tunnelled. Real TLS clients and raw loopback backends; the proxy
// runs with short timeouts, the assertions with generous bounds (a slow machine passes too).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { startProxy, type RunningProxy } from "./proxy.ts";
import { backend, sandbox, type Backend, type Sandbox } from "./test/support.ts";
import { rawBackend, type RawBackend } from "./test/wire-client.ts";

const H = "tunnel.test";
const IDLE_MS = 400;
const UPSTREAM_MS = 400;
/** With the upstream's timeout, the deadline of the whole handshake (3 s). */
const WAKE_MS = 2600;
const SWITCH = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

/** A raw TLS client: what it received, whether it was closed, and when. */
interface Client {
  readonly socket: TLSSocket;
  text(): string;
  /** Resolves true once the connection is closed, false after `ms`. */
  closed(ms: number): Promise<boolean>;
  /** Resolves once the received text matches, or rejects after `ms`. */
  received(pattern: RegExp, ms?: number): Promise<void>;
}

function client(port: number, allowHalfOpen = false): Promise<Client> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen reaches the TLS socket, though the option type does not list it.
    const options: ConnectionOptions & { allowHalfOpen: boolean } = { host: "127.0.0.1", port, servername: H, ca: ca(), ALPNProtocols: ["http/1.1"], allowHalfOpen };
    const socket = tlsConnect(options);
    let text = "";
    let isClosed = false;
    const waiters = new Set<() => void>();
    const wake = () => {
      for (const waiter of waiters) waiter();
    };
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      wake();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      isClosed = true;
      wake();
    });
    const until = (done: () => boolean, ms: number) =>
      new Promise<boolean>((settle) => {
        if (done()) {
          settle(true);
          return;
        }
        const check = () => {
          if (!done()) return;
          waiters.delete(check);
          clearTimeout(timer);
          settle(true);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          settle(done());
        }, ms);
        waiters.add(check);
      });
    socket.once("secureConnect", () =>
      resolve({
        socket,
        text: () => text,
        closed: (ms) => until(() => isClosed, ms),
        received: async (pattern, ms = 3000) => {
          if (!(await until(() => pattern.test(text), ms))) throw new Error(`never received ${String(pattern)}; got ${JSON.stringify(text.slice(0, 200))}`);
        },
      }),
    );
    socket.once("error", reject);
  });
}

let caPem = "";
const ca = () => caPem;
const upgrade = (path: string, host = H) => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;

describe("snitch-proxy upgrades and tunnels", () => {
  let box: Sandbox;
  let proxy: RunningProxy;
  let port: number;
  let raw: RawBackend;
  let echo: Backend;
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();

  before(async () => {
    box = await sandbox();
    caPem = box.ca.certificatePem;
    raw = await rawBackend((socket, request) => {
      sockets.add(socket);
      const every = (ms: number, times: number, run: (i: number) => void) => {
        let i = 0;
        const timer = setInterval(() => {
          if (i >= times || socket.destroyed) {
            clearInterval(timer);
            return;
          }
          run(i++);
        }, ms);
        timers.add(timer);
      };
      switch (request.path) {
        case "/echo":
          socket.write(SWITCH);
          socket.on("data", (chunk: Buffer) => socket.write(chunk));
          return;
        case "/ticking":
          socket.write(SWITCH);
          every(100, 30, () => socket.write("t"));
          return;
        case "/sink":
          socket.write(SWITCH);
          return;
        case "/silent":
          return;
        case "/trickle":
          // A valid head, one byte of a long field at a time: never idle, never done.
          socket.write("HTTP/1.1 101 Switching Protocols\r\nX-Slow: ");
          every(100, 200, () => socket.write("a"));
          return;
        case "/many-fields":
          socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${Array.from({ length: 300 }, (_, i) => `X-F${String(i)}: v`).join("\r\n")}\r\n\r\n`);
          return;
        default:
          socket.write("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
      }
    });
    echo = await backend("echo");
    await box.certify(H);
    await box.routes([
      { host: H, pathPrefix: "/", serviceId: "raw", upstream: { kind: "address", address: raw.address } },
      { host: H, pathPrefix: "/plain", serviceId: "echo", upstream: { kind: "address", address: echo.address } },
    ]);
    proxy = await startProxy({
      stateDir: box.stateDir,
      logger: box.logger,
      https: { host: "127.0.0.1", port: 0 },
      accessLog: false,
      writeStats: false,
      idleTimeoutMs: IDLE_MS,
      upstreamTimeoutMs: UPSTREAM_MS,
      wakeTimeoutMs: WAKE_MS,
      connectionsCheckingIntervalMs: 100,
    });
    port = proxy.httpsAddress.port;
  });

  after(async () => {
    for (const timer of timers) clearInterval(timer);
    for (const socket of sockets) socket.destroy();
    await proxy.stop(300);
    await raw.close();
    await echo.close();
    await box.cleanup();
  });

  it("carries a tunnel both ways, then closes it once it is idle", async () => {
    const c = await client(port);
    c.socket.write(upgrade("/echo"));
    await c.received(/^HTTP\/1\.1 101 /);
    c.socket.write("ping");
    await c.received(/ping$/);
    const started = Date.now();
    assert.ok(await c.closed(5000), "the idle tunnel was closed");
    assert.ok(Date.now() - started >= IDLE_MS / 2, "not before the idle timeout");
  });

  it("keeps a tunnel open while only the backend talks", async () => {
    const c = await client(port);
    c.socket.write(upgrade("/ticking"));
    await c.received(/^HTTP\/1\.1 101 /);
    assert.equal(await c.closed(IDLE_MS * 3), false, "a tunnel with traffic from the backend stayed open");
    assert.ok((c.text().match(/t/g) ?? []).length >= 5, "the ticks arrived");
    c.socket.destroy();
  });

  it("keeps a tunnel open while only the client talks", async () => {
    const c = await client(port);
    c.socket.write(upgrade("/sink"));
    await c.received(/^HTTP\/1\.1 101 /);
    const ticker = setInterval(() => c.socket.write("x"), 100);
    try {
      assert.equal(await c.closed(IDLE_MS * 3), false, "a tunnel with traffic from the client stayed open");
    } finally {
      clearInterval(ticker);
      c.socket.destroy();
    }
  });

  it("answers 504 and closes when the upstream does not answer the upgrade", async () => {
    const c = await client(port);
    c.socket.write(upgrade("/silent"));
    // The upstream's own timeout, well before the handshake's deadline.
    await c.received(/^HTTP\/1\.1 504 /, 2400);
    assert.ok(await c.closed(3000), "closed after the 504");
  });

  it("answers 504 when the upstream trickles its answer past the handshake deadline", async () => {
    const c = await client(port);
    const started = Date.now();
    c.socket.write(upgrade("/trickle"));
    await c.received(/^HTTP\/1\.1 504 /, 8000);
    assert.ok(Date.now() - started < 7000, `took ${String(Date.now() - started)} ms`);
    assert.ok(await c.closed(3000), "closed after the 504");
  });

  it("answers 502 to a 101 no client should be given", async () => {
    const c = await client(port);
    c.socket.write(upgrade("/many-fields"));
    await c.received(/^HTTP\/1\.1 502 /);
    assert.ok(await c.closed(3000), "closed after the 502");
  });

  it("destroys a refused upgrade's connection even when the client keeps its side open", async () => {
    const c = await client(port, true);
    c.socket.write(upgrade("/refused"));
    await c.received(/^HTTP\/1\.1 403 /);
    // A destroyed connection answers what the client still sends with a reset; a half-closed one
    // would take it in silence and stay open.
    const poke = setInterval(() => c.socket.write("x"), 200);
    try {
      assert.ok(await c.closed(5000), "the proxy closed the connection, not only its side");
    } finally {
      clearInterval(poke);
    }
  });

  it("serves an h2c upgrade as a plain request, without Upgrade, on a connection that goes on", async () => {
    const c = await client(port);
    const seen = echo.seen.length;
    c.socket.write(`GET /plain/one HTTP/1.1\r\nHost: ${H}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`);
    await c.received(/echo GET \/plain\/one $/);
    assert.match(c.text(), /^HTTP\/1\.1 200 /);
    const got = echo.seen[seen];
    assert.ok(got, "the backend got the request");
    assert.equal(got.headers.upgrade, undefined, "no Upgrade reached the backend");
    assert.equal(got.headers["http2-settings"], undefined, "no HTTP2-Settings reached the backend");
    c.socket.write(`GET /plain/two HTTP/1.1\r\nHost: ${H}\r\n\r\n`);
    await c.received(/echo GET \/plain\/two $/);
    c.socket.destroy();
  });

  it("reads Connection tokens as llhttp does: a no-break space before upgrade is no upgrade", async () => {
    const c = await client(port);
    const seen = echo.seen.length;
    // 0xA0 is not HTTP whitespace: a backend on node:http sees no upgrade here, so neither may the proxy.
    c.socket.write(Buffer.from(`GET /plain/nbsp HTTP/1.1\r\nHost: ${H}\r\nConnection: \xa0upgrade\r\nUpgrade: websocket\r\n\r\n`, "latin1"));
    await c.received(/echo GET \/plain\/nbsp $/);
    assert.match(c.text(), /^HTTP\/1\.1 200 /);
    assert.equal(echo.seen[seen]?.headers.upgrade, undefined, "served as a plain request, without Upgrade");
    c.socket.destroy();
  });

  it("refuses an upgrade for another site than the connection's (421)", async () => {
    await box.certify("other.tunnel.test");
    const c = await client(port);
    c.socket.write(upgrade("/echo", "other.tunnel.test"));
    await c.received(/^HTTP\/1\.1 421 /);
    await sleep(10);
    assert.ok(await c.closed(3000));
  });
});
