// One connection's trouble stays with that connection: an exception while serving it ends it
// alone, and a request head sent byte by byte costs linear work. Real loopback sockets, except
// where exact chunking matters (a stream pushed one byte at a time).
import assert from "node:assert/strict";
import { createServer as createHttpServer } from "node:http";
import { connect as netConnect, createServer as createNetServer, type Server } from "node:net";
import { Duplex } from "node:stream";
import { after, before, describe, it } from "node:test";
import type { TLSSocket } from "node:tls";
import { Http1Front, type FrontHandlers } from "./front.ts";
import { ORIGIN_FAULT, Origins, type OriginError } from "./origin.ts";
import { listenTracked, type Listening } from "../test/support.ts";

const OPTIONS = { maxHeaderBytes: 16_384, headersTimeoutMs: 5000, requestTimeoutMs: 5000, keepAliveTimeoutMs: 5000, idleTimeoutMs: 5000, checkingIntervalMs: 1000 };

/** Sends a request on a new plain connection and reads until the peer closes (or 3 s). */
function ask(port: number, request: string): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = netConnect(port, "127.0.0.1", () => socket.write(request));
    let text = "";
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      if (/\r\n\r\nok$/.test(text)) {
        socket.destroy();
        resolve({ text, closed: false });
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => resolve({ text, closed: true }));
    setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, 3000).unref();
  });
}

describe("faults stay with their connection", () => {
  const faults: string[] = [];
  let front: Http1Front;
  let server: Server;
  let port = 0;

  before(async () => {
    const handlers: FrontHandlers = {
      exchange(exchange) {
        if (exchange.url === "/boom") throw new Error("a handler bug");
        exchange.reply.writeHead(200, { "content-length": 2 });
        exchange.reply.end("ok");
      },
      upgrade: (request) => request.socket.destroy(),
      refused: () => undefined,
      fault: (error, where) => faults.push(`${where}: ${(error as Error).message}`),
    };
    front = new Http1Front(OPTIONS, handlers);
    server = createNetServer((socket) => front.attach(socket as unknown as TLSSocket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as { port: number }).port;
  });

  after(async () => {
    front.stop();
    await new Promise((resolve) => server.close(resolve));
  });

  it("destroys only the connection whose request handler threw, and serves the next one", async () => {
    const boom = await ask(port, "GET /boom HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.equal(boom.closed, true, "the faulty connection was destroyed");
    assert.equal(boom.text, "");
    assert.ok(faults.some((line) => line.includes("a handler bug")), "the fault was reported");
    const fine = await ask(port, "GET /fine HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.match(fine.text, /^HTTP\/1\.1 200 /);
  });

  it("scans a 16 KiB head sent one byte at a time in linear work", async () => {
    const head = Buffer.from(`GET /slow HTTP/1.1\r\nHost: x\r\nX-Pad: ${"a".repeat(16_000)}\r\n\r\n`);
    let written = "";
    const stream = new Duplex({
      read() {
        // Bytes are pushed by the test.
      },
      write(chunk: Buffer, _encoding, done) {
        written += chunk.toString("latin1");
        done();
      },
    });
    let chunks = 0;
    stream.on("data", () => chunks++);
    const scanned = front.scannedBytes;
    const copied = front.copiedBytes;
    front.attach(stream as unknown as TLSSocket);
    await new Promise((resolve) => setImmediate(resolve));
    for (const byte of head) stream.push(Buffer.from([byte]));
    for (let i = 0; i < 100 && !written.includes("\r\n\r\nok"); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.match(written, /^HTTP\/1\.1 200 /, "the request was answered");
    assert.ok(chunks > head.length / 2, `the head came in ${String(chunks)} pieces`);
    // Quadratic rescanning would be about length²/2 (130 MB here); linear is a few times the length.
    const scanWork = front.scannedBytes - scanned;
    const copyWork = front.copiedBytes - copied;
    assert.ok(scanWork < 4 * head.length, `scanned ${String(scanWork)} bytes for a ${String(head.length)}-byte head`);
    assert.ok(copyWork < 4 * head.length, `copied ${String(copyWork)} bytes for a ${String(head.length)}-byte head`);
    stream.destroy();
  });
});

describe("the upstream client against a hostile backend", () => {
  let backend: Listening;
  const faults: string[] = [];
  let origins: Origins;

  before(async () => {
    backend = await listenTracked(
      createHttpServer((_req, res) => {
        res.writeHead(200, { "content-length": 2 });
        res.end("ok");
      }),
    );
    origins = new Origins({ headersTimeoutMs: 2000, onFault: (error, where) => faults.push(`${where}: ${(error as Error).message}`) });
  });

  after(async () => {
    origins.close();
    await backend.close();
  });

  const call = (throwOnHead: boolean) =>
    new Promise<{ status?: number; body: string; error?: OriginError }>((resolve) => {
      let status: number | undefined;
      let body = "";
      origins.send({ host: "127.0.0.1", port: backend.port }, { method: "GET", path: "/", headers: { host: "x" }, body: null }, {
        onHead(code) {
          if (throwOnHead) throw new Error("the client side refused the head");
          status = code;
        },
        onData(chunk) {
          body += chunk.toString("latin1");
          return true;
        },
        onEnd: () => resolve({ status, body }),
        onError: (error) => resolve({ body, error }),
      });
    });

  it("reads a response head trickled in small pieces in linear work", async () => {
    const head = `HTTP/1.1 200 OK\r\nX-Pad: ${"a".repeat(30_000)}\r\nContent-Length: 2\r\n\r\n`;
    const trickler = await listenTracked(
      createNetServer((socket) => {
        socket.setNoDelay(true);
        socket.once("data", () => {
          let at = 0;
          const next = () => {
            if (socket.destroyed) return;
            if (at >= head.length) {
              socket.write("ok");
              return;
            }
            socket.write(head.slice(at, at + 4));
            at += 4;
            setImmediate(next);
          };
          next();
        });
      }),
    );
    try {
      const scanned = origins.scannedBytes;
      const copied = origins.copiedBytes;
      const answer = await new Promise<{ status?: number; body: string; error?: OriginError }>((resolve) => {
        let status: number | undefined;
        let body = "";
        origins.send({ host: "127.0.0.1", port: trickler.port }, { method: "GET", path: "/", headers: { host: "x" }, body: null }, {
          onHead: (code) => (status = code),
          onData(chunk) {
            body += chunk.toString("latin1");
            return true;
          },
          onEnd: () => resolve({ status, body }),
          onError: (error) => resolve({ body, error }),
        });
      });
      assert.equal(answer.status, 200, answer.error?.message);
      assert.equal(answer.body, "ok");
      // Rescanning from the start on each read would cost about length² / (2 × read size).
      const scanWork = origins.scannedBytes - scanned;
      const copyWork = origins.copiedBytes - copied;
      assert.ok(scanWork < 4 * head.length, `scanned ${String(scanWork)} bytes for a ${String(head.length)}-byte head`);
      assert.ok(copyWork < 4 * head.length, `copied ${String(copyWork)} bytes for a ${String(head.length)}-byte head`);
    } finally {
      await trickler.close();
    }
  });

  it("fails that request with a fault and keeps serving others", async () => {
    const bad = await call(true);
    assert.equal(bad.error?.code, ORIGIN_FAULT);
    assert.ok(faults.some((line) => line.includes("the client side refused the head")), "the fault was reported");
    const good = await call(false);
    assert.equal(good.status, 200);
    assert.equal(good.body, "ok");
  });
});

