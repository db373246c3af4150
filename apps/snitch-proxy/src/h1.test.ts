// Acceptance tests for snitch-proxy's HTTP/1.1 wire behaviour over TLS, written to the contract of
// the HTTP/1.1 engine (not to whatever node:http happens to do). Raw sockets both sides, so the
// exact bytes are under the test's control.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import { connect as netConnect, type Socket } from "node:net";
import { after, afterEach, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { connect as tlsConnect } from "node:tls";
import { startProxy, type RunningProxy } from "./proxy.ts";
import { sandbox, type Sandbox } from "./test/support.ts";
import { getRequest, header, headerLines, rawBackend, recordingBackend, sha256, Wire, type RawBackend, type RawResponse, type RecordingBackend } from "./test/wire-client.ts";

const H = "app.h1.test";
const CLOSE_BODY = `${"z".repeat(100_000)}END`;

/** The echo backend's special paths. */
function echoHandler(req: IncomingMessage, res: ServerResponse, body: Buffer): boolean {
  switch (req.url) {
    case "/sum": {
      const text = `${String(body.length)} ${sha256(body)}`;
      res.writeHead(200, { "content-length": Buffer.byteLength(text) });
      res.end(text);
      return true;
    }
    case "/204":
      res.writeHead(204, { "x-kind": "no-content" });
      res.end();
      return true;
    case "/304":
      res.writeHead(304, { etag: '"v1"' });
      res.end();
      return true;
    case "/cookies":
      res.writeHead(200, { "set-cookie": ["a=1; Path=/", "b=2; Path=/"], "content-length": 2 });
      res.end("ok");
      return true;
    case "/hop":
      res.writeHead(200, { connection: "x-private", "x-private": "secret", "keep-alive": "timeout=77", "x-public": "yes", "content-length": 2 });
      res.end("ok");
      return true;
    default:
      return false;
  }
}

/** The raw backend's exact answers, by path. */
function rawAnswer(socket: Socket, request: { path: string }): void {
  switch (request.path) {
    case "/raw/close-delimited":
      socket.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n${CLOSE_BODY}`);
      return;
    case "/raw/http10":
      socket.end(`HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n${CLOSE_BODY}`);
      return;
    case "/raw/chunked":
      socket.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA;a=\"b c\"\r\n world, an\r\nf\r\nd more chunks!!\r\n0\r\n\r\n");
      return;
    case "/raw/conn-close":
      socket.end("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbye!");
      return;
    case "/raw/silent-close":
      // Keep-alive by default in HTTP/1.1, then the socket dies anyway: a stale pooled connection.
      socket.end("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfine!");
      return;
    case "/raw/garbage":
      socket.end("NOT HTTP\r\n\r\n");
      return;
    case "/raw/hangup":
      socket.end();
      return;
    default:
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nraw");
  }
}

/** A 200 with this body and a request id (every response has one). */
function assertOk(response: RawResponse, body: string, what = ""): void {
  assert.equal(response.status, 200, `${what} status`);
  assert.equal(response.body.toString("latin1"), body, `${what} body`);
  assert.ok(header(response, "x-request-id"), `${what} has x-request-id`);
}

describe("snitch-proxy HTTP/1.1 wire behaviour", () => {
  let box: Sandbox;
  let proxy: RunningProxy;
  let port: number;
  let echo: RecordingBackend;
  let stale: RecordingBackend;
  let raw: RawBackend;
  const wires: Wire[] = [];

  /** A raw TLS connection to the proxy for H, destroyed after the test. */
  const open = async (to = port): Promise<Wire> => {
    const wire = await Wire.open(to, H, box.ca.certificatePem);
    wires.push(wire);
    return wire;
  };

  before(async () => {
    box = await sandbox();
    echo = await recordingBackend("echo", echoHandler);
    // Closes idle keep-alive connections after 100 ms: the proxy's pooled connection goes stale.
    stale = await recordingBackend("stale", undefined, 100);
    raw = await rawBackend(rawAnswer);
    await box.certify(H);
    await box.routes([
      { host: H, pathPrefix: "/", serviceId: "echo", upstream: { kind: "address", address: echo.address } },
      { host: H, pathPrefix: "/stale", serviceId: "stale", upstream: { kind: "address", address: stale.address } },
      { host: H, pathPrefix: "/raw", serviceId: "raw", upstream: { kind: "address", address: raw.address } },
    ]);
    proxy = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "127.0.0.1", port: 0 }, accessLog: false, writeStats: false, upstreamTimeoutMs: 3000 });
    port = proxy.httpsAddress.port;
  });

  afterEach(() => {
    for (const wire of wires.splice(0)) wire.destroy();
  });

  after(async () => {
    await proxy.stop(500);
    await echo.close();
    await stale.close();
    await raw.close();
    await box.cleanup();
  });

  describe("connection reuse", () => {
    it("answers 100 sequential GETs on one connection, over few upstream connections", async () => {
      const wire = await open();
      const from = echo.seen.length;
      for (let i = 0; i < 100; i++) assertOk(await wire.roundTrip(getRequest(H, `/k${String(i)}`)), `echo GET /k${String(i)}`, `request ${String(i)}`);
      const seen = echo.seen.slice(from);
      assert.equal(seen.length, 100);
      // Upstream keep-alive: the proxy reuses its upstream connections.
      const upstreamConnections = new Set(seen.map((s) => s.connection));
      assert.ok(upstreamConnections.size < 5, `the backend saw ${String(upstreamConnections.size)} connections`);
    });

    it("answers two, then three, pipelined GETs in one write, in order", async () => {
      const wire = await open();
      wire.write(getRequest(H, "/p1") + getRequest(H, "/p2"));
      assertOk(await wire.response(), "echo GET /p1");
      assertOk(await wire.response(), "echo GET /p2");
      wire.write(getRequest(H, "/p3") + getRequest(H, "/p4") + getRequest(H, "/p5"));
      assertOk(await wire.response(), "echo GET /p3");
      assertOk(await wire.response(), "echo GET /p4");
      assertOk(await wire.response(), "echo GET /p5");
    });

    it("answers with connection: close and closes when the client sends Connection: close", async () => {
      const wire = await open();
      const response = await wire.roundTrip(getRequest(H, "/bye", "Connection: close\r\n"));
      assertOk(response, "echo GET /bye");
      assert.match(header(response, "connection") ?? "", /\bclose\b/i);
      assert.ok(await wire.closed(2000), "the proxy closed the connection");
    });

    it("answers an HTTP/1.0 request with a Host and closes after it", async () => {
      const wire = await open();
      const response = await wire.roundTrip(`GET /old HTTP/1.0\r\nHost: ${H}\r\n\r\n`);
      assertOk(response, "echo GET /old");
      assert.ok(await wire.closed(2000), "no keep-alive was asked: the proxy closed");
    });

    it("keeps an HTTP/1.0 connection open when the client asks Connection: keep-alive", async () => {
      const wire = await open();
      const ka = "Connection: keep-alive\r\n";
      const first = await wire.roundTrip(`GET /old1 HTTP/1.0\r\nHost: ${H}\r\n${ka}\r\n`);
      assertOk(first, "echo GET /old1");
      // A close-delimited body would mean the connection cannot be reused.
      assert.notEqual(first.framing, "close");
      assertOk(await wire.roundTrip(`GET /old2 HTTP/1.0\r\nHost: ${H}\r\n${ka}\r\n`), "echo GET /old2");
    });
  });

  describe("request smuggling defences", () => {
    const post = (headers: string, body = "") => `POST /sum HTTP/1.1\r\nHost: ${H}\r\n${headers}\r\n${body}`;
    // Each carries a second request that a confused parser would forward.
    const smuggled = `GET /smuggled HTTP/1.1\r\nHost: ${H}\r\n\r\n`;
    const cases: { name: string; request: string }[] = [
      { name: "a request has both Content-Length and Transfer-Encoding", request: post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", `0\r\n\r\n${smuggled}`) },
      { name: "a request has two different Content-Length lines", request: post("Content-Length: 3\r\nContent-Length: 5\r\n", `abcde${smuggled}`) },
      { name: "Content-Length is -1", request: post("Content-Length: -1\r\n", smuggled) },
      { name: "Content-Length is 1e3", request: post("Content-Length: 1e3\r\n", smuggled) },
      { name: "Content-Length is +5", request: post("Content-Length: +5\r\n", `abcde${smuggled}`) },
      { name: "Transfer-Encoding is chunked, gzip", request: post("Transfer-Encoding: chunked, gzip\r\n", `0\r\n\r\n${smuggled}`) },
      { name: "Transfer-Encoding is gzip, chunked", request: post("Transfer-Encoding: gzip, chunked\r\n", `0\r\n\r\n${smuggled}`) },
      { name: "Transfer-Encoding is gzip", request: post("Transfer-Encoding: gzip\r\n", `0\r\n\r\n${smuggled}`) },
      { name: "Transfer-Encoding is identity", request: post("Transfer-Encoding: identity\r\n", `0\r\n\r\n${smuggled}`) },
      { name: "Transfer-Encoding is xchunked", request: post("Transfer-Encoding: xchunked\r\n", `0\r\n\r\n${smuggled}`) },
      { name: "a header name is followed by a space before the colon", request: `GET /a HTTP/1.1\r\nHost : ${H}\r\n\r\n${smuggled}` },
      { name: "a header line is an obs-fold continuation (space)", request: `GET /a HTTP/1.1\r\nHost: ${H}\r\nX-A: 1\r\n  folded\r\n\r\n${smuggled}` },
      { name: "a header line is an obs-fold continuation (tab)", request: `GET /a HTTP/1.1\r\nHost: ${H}\r\nX-A: 1\r\n\tfolded\r\n\r\n${smuggled}` },
      { name: "a header name has a non-token character", request: `GET /a HTTP/1.1\r\nHost: ${H}\r\nX[A]: 1\r\n\r\n${smuggled}` },
      { name: "a header value holds a NUL", request: `GET /a HTTP/1.1\r\nHost: ${H}\r\nX-A: a\u0000b\r\n\r\n${smuggled}` },
      { name: "a header value holds a bare CR", request: `GET /a HTTP/1.1\r\nHost: ${H}\r\nX-A: a\rb\r\n\r\n${smuggled}` },
      { name: "the request line has an extra space", request: `GET /a  HTTP/1.1\r\nHost: ${H}\r\n\r\n${smuggled}` },
      { name: "the request line has no version", request: `GET /a\r\nHost: ${H}\r\n\r\n${smuggled}` },
      { name: "a request has two different Host headers", request: `GET /a HTTP/1.1\r\nHost: ${H}\r\nHost: other.h1.test\r\n\r\n${smuggled}` },
      { name: "a request has the same Host header twice", request: `GET /a HTTP/1.1\r\nHost: ${H}\r\nHost: ${H}\r\n\r\n${smuggled}` },
    ];
    for (const { name, request } of cases) {
      it(`answers 400 and closes when ${name}`, async () => {
        const wire = await open();
        const before = echo.seen.length;
        const response = await wire.roundTrip(request);
        // Long enough for a wrongly forwarded request, or the smuggled one after it, to arrive.
        await sleep(50);
        const forwarded = echo.seen.slice(before).map((s) => `${s.method} ${s.url} HTTP/${s.httpVersion}`);
        assert.equal(response.status, 400, `got ${String(response.status)}; the backend saw ${JSON.stringify(forwarded)}`);
        assert.ok(await wire.closed(2000), "the proxy closed the connection");
        assert.deepEqual(forwarded, [], "the backend saw no request");
      });
    }
  });

  describe("request line and header limits", () => {
    for (const target of ["foo", "http://app.h1.test/a", "*"]) {
      it(`answers 400 to a request-target that does not start with / (${target})`, async () => {
        const wire = await open();
        const before = echo.seen.length;
        const response = await wire.roundTrip(`GET ${target} HTTP/1.1\r\nHost: ${H}\r\n\r\n`);
        assert.equal(response.status, 400);
        assert.equal(echo.seen.length, before, "the backend saw no request");
      });
    }

    for (const version of ["HTTP/1.2", "HTTP/2.0", "HTTP/3.0"]) {
      it(`answers 505 to ${version} in the request line`, async () => {
        const wire = await open();
        const before = echo.seen.length;
        const response = await wire.roundTrip(`GET /v ${version}\r\nHost: ${H}\r\n\r\n`);
        assert.equal(response.status, 505);
        assert.equal(echo.seen.length, before, "the backend saw no request");
      });
    }

    it("answers 431 and closes when the request line is over 16 KiB", async () => {
      const wire = await open();
      const response = await wire.roundTrip(`GET /${"a".repeat(17 * 1024)} HTTP/1.1\r\nHost: ${H}\r\n\r\n`);
      assert.equal(response.status, 431);
      assert.ok(await wire.closed(2000), "the proxy closed the connection");
    });

    it("answers 431 and closes when the header block is over 16 KiB", async () => {
      const wire = await open();
      const many = Array.from({ length: 40 }, (_, i) => `X-Pad-${String(i)}: ${"b".repeat(450)}\r\n`).join("");
      const response = await wire.roundTrip(getRequest(H, "/big-headers", many));
      assert.equal(response.status, 431);
      assert.ok(await wire.closed(2000), "the proxy closed the connection");
    });
  });

  describe("request bodies", () => {
    it("passes a chunked body to the backend as exactly its decoded bytes (hex sizes, extensions, trailers)", async () => {
      const wire = await open();
      // Binary bytes, CRLFs included, so nothing may be re-interpreted on the way.
      const parts = [Buffer.from("0123456789"), Buffer.alloc(31, 0x0d), Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 256))];
      const whole = Buffer.concat(parts);
      const body = Buffer.concat([
        Buffer.from("a;a=b\r\n"), parts[0] ?? Buffer.alloc(0), Buffer.from("\r\n"),
        Buffer.from("1F\r\n"), parts[1] ?? Buffer.alloc(0), Buffer.from("\r\n"),
        Buffer.from("1000;name=\"v\";x\r\n"), parts[2] ?? Buffer.alloc(0), Buffer.from("\r\n"),
        Buffer.from("0\r\nX-Trailer: t\r\n\r\n"),
      ]);
      wire.write(Buffer.concat([Buffer.from(`POST /sum HTTP/1.1\r\nHost: ${H}\r\nTransfer-Encoding: chunked\r\n\r\n`), body]));
      assertOk(await wire.response(), `${String(whole.length)} ${sha256(whole)}`);
      // The trailer was consumed: the connection is still in step.
      assertOk(await wire.roundTrip(getRequest(H, "/after-chunked")), "echo GET /after-chunked");
    });

    it("answers 400 and closes on a malformed chunk size, and serves the next connection", async () => {
      const wire = await open();
      const response = await wire.roundTrip(`POST /sum HTTP/1.1\r\nHost: ${H}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`);
      assert.equal(response.status, 400);
      assert.ok(await wire.closed(2000), "the proxy closed the connection");
      const next = await open();
      assertOk(await next.roundTrip(getRequest(H, "/after-bad-chunk")), "echo GET /after-bad-chunk");
    });

    it("passes a Content-Length body written in many small pieces intact", async () => {
      const wire = await open();
      const body = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 7) % 256));
      wire.write(`POST /sum HTTP/1.1\r\nHost: ${H}\r\nContent-Length: ${String(body.length)}\r\n\r\n`);
      for (let i = 0; i < 64; i++) {
        wire.write(body.subarray(i * 1024, (i + 1) * 1024));
        if (i % 4 === 3) await sleep(2);
      }
      assertOk(await wire.response(), `${String(body.length)} ${sha256(body)}`);
    });

    it("answers 408 or closes when a body stays shorter than its Content-Length past the request timeout", async () => {
      const quick = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "127.0.0.1", port: 0 }, accessLog: false, writeStats: false, headersTimeoutMs: 400, requestTimeoutMs: 600, connectionsCheckingIntervalMs: 100 });
      try {
        const wire = await open(quick.httpsAddress.port);
        const started = Date.now();
        wire.write(`POST /sum HTTP/1.1\r\nHost: ${H}\r\nContent-Length: 100\r\n\r\n0123456789`);
        let outcome: string;
        try {
          outcome = `status ${String((await wire.response({ timeoutMs: 4000 })).status)}`;
        } catch (error) {
          outcome = wire.ended && wire.pending.length === 0 ? "closed" : String(error);
        }
        const took = Date.now() - started;
        assert.ok(outcome === "status 408" || outcome === "closed", `a stalled body gets 408 or a close, got ${outcome}`);
        assert.ok(took >= 400, `not before the timeout (${String(took)} ms)`);
      } finally {
        await quick.stop(200);
      }
    });

    it("sends 100 Continue before the body when the client expects it, then the final answer", async () => {
      const wire = await open();
      wire.write(`POST /sum HTTP/1.1\r\nHost: ${H}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`);
      // The body is held back until the interim answer arrives.
      const interim = await wire.response({ timeoutMs: 2000 });
      assert.equal(interim.status, 100);
      wire.write("hello");
      assertOk(await wire.response(), `5 ${sha256(Buffer.from("hello"))}`);
    });
  });

  describe("response framing", () => {
    it("answers HEAD with the backend's content-length and no body bytes", async () => {
      const wire = await open();
      wire.write(`HEAD /h HTTP/1.1\r\nHost: ${H}\r\n\r\n${getRequest(H, "/g")}`);
      const head = await wire.response({ head: true });
      assert.equal(head.status, 200);
      assert.equal(header(head, "content-length"), String(Buffer.byteLength("echo HEAD /h")));
      // A stray body would be parsed as the next status line.
      assertOk(await wire.response(), "echo GET /g");
      await sleep(50);
      assert.equal(wire.pending.length, 0, "no stray bytes");
    });

    for (const status of [204, 304]) {
      it(`relays a ${String(status)} with no body and keeps the connection in step`, async () => {
        const wire = await open();
        const response = await wire.roundTrip(getRequest(H, `/${String(status)}`));
        assert.equal(response.status, status);
        assert.ok(header(response, "x-request-id"), "has x-request-id");
        assert.equal(header(response, "transfer-encoding"), undefined);
        assertOk(await wire.roundTrip(getRequest(H, "/after")), "echo GET /after");
        await sleep(50);
        assert.equal(wire.pending.length, 0, "no stray bytes");
      });
    }

    it("relays a chunked backend response with chunk extensions complete", async () => {
      const wire = await open();
      assertOk(await wire.roundTrip(getRequest(H, "/raw/chunked")), "hello world, and more chunks!!");
      assertOk(await wire.roundTrip(getRequest(H, "/after-raw-chunked")), "echo GET /after-raw-chunked");
    });

    for (const kind of ["close-delimited", "http10"]) {
      it(`relays a backend response without a length (${kind}) complete, then serves the next request or closes cleanly`, async () => {
        const wire = await open();
        const response = await wire.roundTrip(getRequest(H, `/raw/${kind}`));
        assertOk(response, CLOSE_BODY);
        if (response.framing === "close") return; // Closed cleanly after the whole body.
        assertOk(await wire.roundTrip(getRequest(H, "/after-unframed")), "echo GET /after-unframed");
      });
    }

    it("serves 20 sequential requests on one connection when the backend answers Connection: close each time", async () => {
      const wire = await open();
      for (let i = 0; i < 20; i++) assertOk(await wire.roundTrip(getRequest(H, "/raw/conn-close")), "bye!", `request ${String(i)}`);
    });
  });

  describe("upstream connection failures", () => {
    it("does not surface a pooled connection the backend closed for idleness as a 502", async () => {
      const wire = await open();
      for (let round = 0; round < 2; round++) {
        assertOk(await wire.roundTrip(getRequest(H, `/stale/${String(round)}`)), `stale GET /stale/${String(round)}`, `round ${String(round)}`);
        // The backend drops its idle connection after 100 ms.
        await sleep(300);
      }
      assertOk(await wire.roundTrip(getRequest(H, "/stale/last")), "stale GET /stale/last");
    });

    it("retries GETs when a reused upstream connection dies before answering (backend closes silently after each response)", async () => {
      const wire = await open();
      for (let i = 0; i < 20; i++) assertOk(await wire.roundTrip(getRequest(H, "/raw/silent-close")), "fine!", `request ${String(i)}`);
    });

    it("answers 502 to an upstream that answers garbage or hangs up, and keeps serving the client connection", async () => {
      const wire = await open();
      const garbage = await wire.roundTrip(getRequest(H, "/raw/garbage"));
      assert.equal(garbage.status, 502);
      assert.ok(header(garbage, "x-request-id"), "has x-request-id");
      assertOk(await wire.roundTrip(getRequest(H, "/healthy1")), "echo GET /healthy1");
      const hangup = await wire.roundTrip(getRequest(H, "/raw/hangup"));
      assert.equal(hangup.status, 502);
      assertOk(await wire.roundTrip(getRequest(H, "/healthy2")), "echo GET /healthy2");
    });
  });

  describe("headers", () => {
    it("drops hop-by-hop headers both ways and adds the forwarding headers", async () => {
      const wire = await open();
      const response = await wire.roundTrip(getRequest(H, "/hop", [
        "Connection: keep-alive, x-secret",
        "X-Secret: 1",
        "Keep-Alive: timeout=5",
        "TE: trailers",
        "Proxy-Authorization: Basic eA==",
        "Upgrade: websocket",
        "X-Public: 1",
        "",
      ].join("\r\n")));
      assertOk(response, "ok");
      const seen = echo.seen.at(-1);
      assert.ok(seen);
      assert.equal(seen.url, "/hop");
      const names = seen.rawHeaders.map(([n]) => n.toLowerCase());
      for (const name of ["keep-alive", "te", "proxy-authorization", "upgrade", "x-secret"]) assert.ok(!names.includes(name), `the backend got ${name}`);
      // The client's Connection header is not forwarded; the proxy may speak for its own hop only.
      for (const [name, value] of seen.rawHeaders) {
        if (name.toLowerCase() === "connection") assert.match(value, /^\s*(keep-alive|close)\s*$/i, "only the proxy's own Connection");
      }
      assert.equal(seen.headers["x-public"], "1");
      assert.equal(seen.headers["x-forwarded-for"], "127.0.0.1");
      assert.equal(seen.headers["x-forwarded-proto"], "https");
      assert.equal(seen.headers["x-forwarded-host"], H);
      assert.equal(seen.headers.host, H);
      assert.equal(seen.headers["x-request-id"], header(response, "x-request-id"));
      // And back: the backend's Keep-Alive and Connection-listed headers stop at the proxy.
      assert.equal(header(response, "x-public"), "yes");
      assert.equal(header(response, "x-private"), undefined);
      assert.notEqual(header(response, "keep-alive"), "timeout=77");
      assert.equal(header(response, "transfer-encoding"), undefined);
      assert.equal(header(response, "content-length"), "2");
    });

    it("forwards the host as the client sent it, port included", async () => {
      const wire = await open();
      assertOk(await wire.roundTrip(`GET /with-port HTTP/1.1\r\nHost: ${H}:443\r\n\r\n`), "echo GET /with-port");
      assert.equal(echo.seen.at(-1)?.headers.host, `${H}:443`);
    });

    it("keeps repeated headers: two Set-Cookie lines back, two Accept lines forward", async () => {
      const wire = await open();
      const response = await wire.roundTrip(getRequest(H, "/cookies", "Accept: text/html\r\nAccept: application/json\r\n"));
      assertOk(response, "ok");
      assert.deepEqual(headerLines(response, "set-cookie"), ["a=1; Path=/", "b=2; Path=/"]);
      const seen = echo.seen.at(-1);
      assert.ok(seen);
      const accepts = seen.rawHeaders.filter(([n]) => n.toLowerCase() === "accept").map(([, v]) => v);
      assert.ok(accepts.join(", ") === "text/html, application/json", `the backend got Accept ${JSON.stringify(accepts)}`);
    });

    it("puts an x-request-id on the proxy's own protocol-error answers too (400, 431)", async () => {
      const bad = await open();
      const badRequest = await bad.roundTrip(`POST /sum HTTP/1.1\r\nHost: ${H}\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`);
      assert.equal(badRequest.status, 400);
      assert.ok(header(badRequest, "x-request-id"), "the 400 has x-request-id");
      const big = await open();
      const tooLarge = await big.roundTrip(getRequest(H, "/big", `X-Big: ${"c".repeat(17 * 1024)}\r\n`));
      assert.equal(tooLarge.status, 431);
      assert.ok(header(tooLarge, "x-request-id"), "the 431 has x-request-id");
    });
  });

  describe("connection ends", () => {
    it("dates every answer once: the proxy's own pages, and upstream answers with or without a Date", async () => {
      const wire = await open();
      for (const path of ["/raw/plain", "/dated"]) {
        const response = await wire.roundTrip(getRequest(H, path));
        assert.equal(response.status, 200);
        const dates = headerLines(response, "date");
        assert.equal(dates.length, 1, `${path} has one Date, got ${JSON.stringify(dates)}`);
        assert.ok(Math.abs(Date.parse(dates[0] ?? "") - Date.now()) < 5000, `${path}: a current Date, got ${String(dates[0])}`);
      }
      const refused = await (await open()).roundTrip(`GET /a HTTP/1.1\r\nHost: ${H}\r\nHost: ${H}\r\n\r\n`);
      assert.equal(refused.status, 400);
      assert.equal(headerLines(refused, "date").length, 1, "the proxy's own page has a Date");
    });

    it("cuts off a client that keeps its side open after a refusal, once the keep-alive timeout has passed", async () => {
      const quick = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "127.0.0.1", port: 0 }, accessLog: false, writeStats: false, keepAliveTimeoutMs: 300, connectionsCheckingIntervalMs: 100 });
      // A client that does not close its side when the proxy ends the connection (allowHalfOpen).
      const tcp = netConnect({ host: "127.0.0.1", port: quick.httpsAddress.port, allowHalfOpen: true });
      const socket = tlsConnect({ socket: tcp, servername: H, ca: box.ca.certificatePem, ALPNProtocols: ["http/1.1"] });
      const poke = setInterval(() => socket.writable && socket.write("x"), 50);
      try {
        await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
        socket.on("data", () => undefined);
        socket.on("error", () => undefined);
        const ended = new Promise<number>((resolve) => socket.once("end", () => resolve(Date.now())));
        // The client goes on writing: only once the proxy has let go of the connection do writes fail.
        const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now())));
        const started = Date.now();
        socket.write("NOT HTTP AT ALL\r\n\r\n");
        const endedAt = await Promise.race([ended, sleep(2000).then(() => 0)]);
        assert.ok(endedAt > 0, "the proxy answered the refusal and ended its side");
        const at = await Promise.race([closed, sleep(3000).then(() => 0)]);
        assert.ok(at > 0, "the half-open connection was closed by the proxy");
        assert.ok(at - started >= 250, `not before the keep-alive timeout (${String(at - started)} ms)`);
      } finally {
        clearInterval(poke);
        socket.destroy();
        await quick.stop(200);
      }
    });
  });

  describe("upgrades", () => {
    it("lets go of a connection whose upgrade was refused once the client closes it", async () => {
      const counted = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "127.0.0.1", port: 0 }, accessLog: false, statsIntervalMs: 100 });
      const openConnections = async () => {
        const text = await readFile(join(box.stateDir, "stats", "snitch-proxy.json"), "utf8").catch(() => "{}");
        return (JSON.parse(text) as { counters?: { openConnections?: number } }).counters?.openConnections;
      };
      try {
        // A client that answers the proxy's end with its own, as browsers do, without resetting.
        const socket = tlsConnect({ host: "127.0.0.1", port: counted.httpsAddress.port, servername: H, ca: box.ca.certificatePem, ALPNProtocols: ["http/1.1"] });
        await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
        const answer = new Promise<string>((resolve) => {
          let text = "";
          socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
          socket.once("end", () => resolve(text));
        });
        socket.write(`GET /nowhere HTTP/1.1\r\nHost: unrouted.h1.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
        // Another site than the connection was made for: refused (421) like any other request.
        assert.match(await answer, /^HTTP\/1\.1 421 /);
        socket.end();
        const deadline = Date.now() + 3000;
        let open = await openConnections();
        while (open !== 0 && Date.now() < deadline) {
          await sleep(100);
          open = await openConnections();
        }
        assert.equal(open, 0, "the proxy holds no connection once the client has closed");
      } finally {
        await counted.stop(200);
      }
    });
  });

  describe("isolation", () => {
    it("answers other clients promptly while one holds a half-sent request", async () => {
      const halfHeaders = await open();
      halfHeaders.write(`GET /half HTTP/1.1\r\nHost: ${H}\r\nX-Part: `);
      const halfBody = await open();
      halfBody.write(`POST /sum HTTP/1.1\r\nHost: ${H}\r\nContent-Length: 1000\r\n\r\n0123456789`);
      await sleep(50);
      const other = await open();
      const started = Date.now();
      for (let i = 0; i < 5; i++) assertOk(await other.roundTrip(getRequest(H, `/other${String(i)}`), { timeoutMs: 1000 }), `echo GET /other${String(i)}`);
      assert.ok(Date.now() - started < 1000, `took ${String(Date.now() - started)} ms`);
    });
  });
});
