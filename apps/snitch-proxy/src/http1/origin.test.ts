// Unit tests of snitch-proxy's upstream HTTP/1.1 client (http1/origin.ts) against loopback
// servers: raw node:net ones where the exact bytes matter, node:http ones where a real peer does.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createServer as createHttpServer, type IncomingHttpHeaders } from "node:http";
import { createServer, type Socket } from "node:net";
import { afterEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "@coyote/testing";
import type { BodySink, BodySource } from "../exchange.ts";
import { ORIGIN_PROTOCOL, ORIGIN_RESET, ORIGIN_TIMEOUT, OriginError, Origins, type OriginAddress, type OriginCall, type OriginOptions, type OriginRequest } from "./origin.ts";

/** What each test leaves to close, run last first after it. */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** A client closed after the test. */
function client(options: Partial<OriginOptions> = {}): Origins {
  const origins = new Origins({ headersTimeoutMs: 5000, ...options });
  cleanups.push(() => origins.close());
  return origins;
}

/** A loopback server of raw sockets, in the order they connected. */
interface RawServer {
  readonly address: OriginAddress;
  readonly sockets: Socket[];
  /** When each socket closed (performance.now()), or undefined while it is open. */
  readonly closedAt: (number | undefined)[];
  /** How many sockets are open. */
  open(): number;
}

async function rawServer(onConnection: (socket: Socket, index: number) => void): Promise<RawServer> {
  const sockets: Socket[] = [];
  const closedAt: (number | undefined)[] = [];
  const server = createServer((socket) => {
    const index = sockets.length;
    sockets.push(socket);
    closedAt.push(undefined);
    socket.on("error", () => undefined);
    socket.on("close", () => {
      closedAt[index] = performance.now();
    });
    onConnection(socket, index);
    // Read (and drop, when nobody listens) whatever comes, so that the client's close is seen.
    socket.resume();
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const port = (server.address() as { port: number }).port;
  return { address: { host: "127.0.0.1", port }, sockets, closedAt, open: () => closedAt.filter((at) => at === undefined).length };
}

/** Calls `answer` for each request head (bodies are not expected) arriving on `socket`. */
function onRequests(socket: Socket, answer: (head: string, path: string, count: number) => void): void {
  let buffered = "";
  let count = 0;
  socket.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("latin1");
    for (let end = buffered.indexOf("\r\n\r\n"); end >= 0; end = buffered.indexOf("\r\n\r\n")) {
      const head = buffered.slice(0, end);
      buffered = buffered.slice(end + 4);
      answer(head, head.split(" ")[1] ?? "", count++);
    }
  });
}

/** A raw server answering every request head; `heads[connection]` lists the paths each connection was asked. */
async function rawAnswering(answer: (socket: Socket, path: string, connection: number, count: number) => void): Promise<RawServer & { heads: string[][] }> {
  const heads: string[][] = [];
  const server = await rawServer((socket, index) => {
    heads[index] = [];
    onRequests(socket, (_head, path, count) => {
      heads[index]?.push(path);
      answer(socket, path, index, count);
    });
  });
  return { ...server, heads };
}

/** A response with a Content-Length. */
const lengthResponse = (body: string, extra = "") => `HTTP/1.1 200 OK\r\n${extra}Content-Length: ${String(Buffer.byteLength(body))}\r\n\r\n${body}`;

/** Polls until `check` holds, or fails after `ms`. */
async function until(check: () => boolean, what: string, ms = 2000): Promise<void> {
  const start = performance.now();
  while (!check()) {
    if (performance.now() - start > ms) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** What a request's handler heard. */
interface Outcome {
  status: number | undefined;
  headers: IncomingHttpHeaders | undefined;
  body: Buffer;
  /** "head", "data", "end" and "error", in order ("stuck" when neither an end nor an error came within 5 s). */
  events: string[];
  error: OriginError | undefined;
}

interface Pending {
  readonly call: OriginCall;
  readonly outcome: Outcome;
  /** Settles at onEnd or onError. */
  readonly done: Promise<Outcome>;
}

interface Hooks {
  onHead?(): void;
  onData?(chunk: Buffer): boolean;
  onEnd?(): void;
}

/** Sends a request (GET / with a Host header unless told otherwise) and records what comes back. */
function send(origins: Origins, address: OriginAddress, request: Partial<OriginRequest> = {}, hooks: Hooks = {}): Pending {
  const outcome: Outcome = { status: undefined, headers: undefined, body: Buffer.alloc(0), events: [], error: undefined };
  const chunks: Buffer[] = [];
  let resolveDone: (outcome: Outcome) => void = () => undefined;
  const done = new Promise<Outcome>((resolve) => (resolveDone = resolve));
  // A handler that hears neither an end nor an error fails the test instead of hanging it.
  const stuck = setTimeout(() => {
    outcome.events.push("stuck");
    resolveDone(outcome);
  }, 5000);
  stuck.unref();
  const settle = (settled: Outcome) => {
    clearTimeout(stuck);
    resolveDone(settled);
  };
  const call = origins.send(address, { method: "GET", path: "/", headers: { host: "origin.test" }, body: null, ...request }, {
    onHead(status, headers) {
      outcome.events.push("head");
      outcome.status = status;
      outcome.headers = headers;
      hooks.onHead?.();
    },
    onData(chunk) {
      outcome.events.push("data");
      chunks.push(Buffer.from(chunk));
      return hooks.onData ? hooks.onData(chunk) : true;
    },
    onEnd() {
      outcome.events.push("end");
      outcome.body = Buffer.concat(chunks);
      hooks.onEnd?.();
      settle(outcome);
    },
    onError(error) {
      outcome.events.push("error");
      outcome.error = error;
      outcome.body = Buffer.concat(chunks);
      settle(outcome);
    },
  });
  return { call, outcome, done };
}

/** Sends a GET and waits for its end, which must come without an error. */
async function get(origins: Origins, address: OriginAddress, path = "/", method = "GET"): Promise<Outcome> {
  const outcome = await send(origins, address, { path, method }).done;
  assert.equal(outcome.error, undefined, `${method} ${path}: no error`);
  return outcome;
}

/** Asserts an outcome is an OriginError with this code (or any code). */
function assertFailed(outcome: Outcome, code?: string): OriginError {
  const error = outcome.error;
  assert.ok(error instanceof OriginError, `an OriginError, not ${String(error)} (events ${outcome.events.join(",")})`);
  if (code !== undefined) assert.equal(error.code, code, error.message);
  assert.equal(outcome.events.at(-1), "error");
  assert.equal(outcome.events.filter((event) => event === "error" || event === "end").length, 1, "one error and no end");
  return error;
}

/** A request body from these chunks, fed asynchronously and respecting back-pressure. */
function bodySource(chunks: Buffer[]): BodySource & { stopped: boolean; resumes: number; pauses: number } {
  let sink: BodySink | undefined;
  let next = 0;
  let ended = false;
  const source = {
    stopped: false,
    resumes: 0,
    pauses: 0,
    start(started: BodySink) {
      assert.equal(sink, undefined, "start is called once");
      sink = started;
      setImmediate(pump);
    },
    resume() {
      source.resumes++;
      setImmediate(pump);
    },
    stop() {
      source.stopped = true;
    },
  };
  function pump(): void {
    if (sink === undefined || source.stopped || ended) return;
    while (next < chunks.length) {
      if (!sink.data(chunks[next++] as Buffer)) {
        source.pauses++;
        return;
      }
    }
    ended = true;
    sink.end();
  }
  return source;
}

/** A body given synchronously as soon as it is started. */
function syncBody(text: string): BodySource & { stopped: boolean } {
  const source = {
    stopped: false,
    start(sink: BodySink) {
      sink.data(Buffer.from(text));
      sink.end();
    },
    resume() {},
    stop() {
      source.stopped = true;
    },
  };
  return source;
}

/** A node:http server answering each request with what it received, counting its connections. */
async function echoServer(): Promise<{ address: OriginAddress; connections: () => number }> {
  let connections = 0;
  const server = createHttpServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (chunk: Buffer) => parts.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(parts);
      const text = JSON.stringify({
        method: req.method,
        url: req.url,
        te: req.headers["transfer-encoding"] ?? null,
        cl: req.headers["content-length"] ?? null,
        length: body.length,
        sha: sha256(body),
      });
      res.writeHead(200, { "x-test": "yes", "content-type": "application/json" });
      res.end(text);
    });
  });
  server.on("connection", () => connections++);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const port = (server.address() as { port: number }).port;
  return { address: { host: "127.0.0.1", port }, connections: () => connections };
}

describe("Origins: responses", () => {
  it("hears the head, then the body's chunks, then the end, and reuses the connection for the next two requests", async () => {
    const server = await echoServer();
    const origins = client();
    for (const path of ["/one", "/two?x=1", "/three"]) {
      const outcome = await get(origins, server.address, path);
      assert.equal(outcome.status, 200);
      assert.equal(outcome.headers?.["x-test"], "yes");
      assert.equal(outcome.headers["content-type"], "application/json");
      assert.match(outcome.events.join(","), /^head(,data)+,end$/);
      const echoed = JSON.parse(outcome.body.toString()) as { method: string; url: string };
      assert.equal(echoed.method, "GET");
      assert.equal(echoed.url, path);
    }
    assert.equal(server.connections(), 1, "one upstream connection for three requests");
  });

  it("reads a Content-Length body written in pieces, then reuses the connection", async () => {
    const body = Buffer.alloc(300_000, "abcdefghij");
    const server = await rawAnswering((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${String(body.length)}\r\n\r\n`);
      socket.write(body.subarray(0, 1000));
      setTimeout(() => socket.write(body.subarray(1000)), 20);
    });
    const origins = client();
    const first = await get(origins, server.address, "/a");
    assert.equal(first.body.length, body.length);
    assert.equal(sha256(first.body), sha256(body));
    const second = await get(origins, server.address, "/b");
    assert.equal(sha256(second.body), sha256(body));
    assert.deepEqual(server.heads, [["/a", "/b"]]);
  });

  it("reads a chunked body written in pieces, without its framing, then reuses the connection", async () => {
    const server = await rawAnswering((socket) => {
      socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel");
      setTimeout(() => socket.write("lo\r\nA\r\n world, an\r\n"), 10);
      setTimeout(() => socket.write("f\r\nd more chunks!!\r\n0\r\nX-Trailer: 1\r\n\r\n"), 20);
    });
    const origins = client();
    for (const path of ["/a", "/b"]) {
      const outcome = await get(origins, server.address, path);
      assert.equal(outcome.body.toString(), "hello world, and more chunks!!");
      assert.equal(outcome.headers?.["transfer-encoding"], "chunked");
    }
    assert.deepEqual(server.heads, [["/a", "/b"]]);
  });

  it("reads a body delimited by the close of the connection, and does not pool it", async () => {
    const body = "z".repeat(100_000) + "END";
    const server = await rawAnswering((socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
      setTimeout(() => socket.end(body), 10);
    });
    const origins = client();
    const first = await get(origins, server.address, "/a");
    assert.equal(first.body.toString(), body);
    const second = await get(origins, server.address, "/b");
    assert.equal(second.body.toString(), body);
    assert.equal(server.sockets.length, 2);
  });

  it("reads no body after a HEAD response with a Content-Length, and reuses the connection", async () => {
    const server = await rawAnswering((socket, path) => {
      if (path === "/head") socket.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
      else socket.write(lengthResponse("after"));
    });
    const origins = client();
    const head = await get(origins, server.address, "/head", "HEAD");
    assert.deepEqual(head.events, ["head", "end"]);
    assert.equal(head.headers?.["content-length"], "1000");
    const next = await get(origins, server.address, "/next");
    assert.equal(next.body.toString(), "after");
    assert.deepEqual(server.heads, [["/head", "/next"]]);
  });

  it("reads a 204 and a 304 without a body and reuses the connection", async () => {
    const server = await rawAnswering((socket, path) => {
      if (path === "/204") socket.write("HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");
      else socket.write('HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n');
    });
    const origins = client();
    const noContent = await get(origins, server.address, "/204");
    assert.equal(noContent.status, 204);
    assert.deepEqual(noContent.events, ["head", "end"]);
    const notModified = await get(origins, server.address, "/304");
    assert.equal(notModified.status, 304);
    assert.deepEqual(notModified.events, ["head", "end"]);
    assert.deepEqual(server.heads, [["/204", "/304"]]);
  });

  it("skips 100 and 103 interim responses, in one write or several", async () => {
    const INTERIM = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";
    const server = await rawAnswering((socket, path) => {
      if (path === "/together") {
        socket.write(`${INTERIM}${lengthResponse("final", "X-Final: yes\r\n")}`);
      } else {
        socket.write("HTTP/1.1 100 Continue\r\n\r\n");
        setTimeout(() => socket.write("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 2"), 10);
        setTimeout(() => socket.write(`00 OK\r\nX-Final: yes\r\nContent-Length: 5\r\n\r\nfinal`), 20);
      }
    });
    const origins = client();
    for (const path of ["/together", "/apart"]) {
      const outcome = await get(origins, server.address, path);
      assert.equal(outcome.status, 200, path);
      assert.equal(outcome.headers?.["x-final"], "yes", path);
      assert.equal(outcome.headers.link, undefined, path);
      assert.deepEqual(outcome.events, ["head", "data", "end"], path);
      assert.equal(outcome.body.toString(), "final", path);
    }
    assert.deepEqual(server.heads, [["/together", "/apart"]]);
  });

  const UNPOOLED: [string, string][] = [
    ["Connection: close", lengthResponse("bye!", "Connection: close\r\n")],
    ["Connection: keep-alive, Close", lengthResponse("bye!", "Connection: keep-alive, Close\r\n")],
    ["HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nbye!"],
    ["HTTP/1.0 with Connection: keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nbye!"],
  ];
  for (const [what, answer] of UNPOOLED) {
    it(`closes a connection whose response has ${what} and opens a new one for the next request`, async () => {
      // The server leaves the connection open: closing it is the client's doing.
      const server = await rawAnswering((socket) => socket.write(answer));
      const origins = client();
      assert.equal((await get(origins, server.address, "/a")).body.toString(), "bye!");
      await until(() => server.closedAt[0] !== undefined, "the client to close the first connection");
      assert.equal((await get(origins, server.address, "/b")).body.toString(), "bye!");
      assert.deepEqual(server.heads, [["/a"], ["/b"]]);
    });
  }

  it("does not pool a connection that sent more than the response", async () => {
    const server = await rawAnswering((socket) => socket.write(`${lengthResponse("ok")}EXTRA`));
    const origins = client();
    assert.equal((await get(origins, server.address, "/a")).body.toString(), "ok");
    assert.equal((await get(origins, server.address, "/b")).body.toString(), "ok");
    assert.deepEqual(server.heads, [["/a"], ["/b"]]);
  });
});

describe("Origins: stale pooled connections", () => {
  it("retries a bodiless request once on a new connection when the server closed the reused one right after the previous response", async () => {
    const server = await rawAnswering((socket, _path, connection) => {
      if (socket.writableEnded) return;
      socket.write(lengthResponse(`connection ${String(connection)}`));
      socket.end();
    });
    const origins = client();
    let second: Pending | undefined;
    // Sent from onEnd, so it goes on the pooled connection before its close is read.
    const first = await send(origins, server.address, { path: "/1" }, { onEnd: () => (second = send(origins, server.address, { path: "/2" })) }).done;
    assert.equal(first.body.toString(), "connection 0");
    assert.ok(second);
    const outcome = await second.done;
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.body.toString(), "connection 1");
    assert.deepEqual(server.heads, [["/1", "/2"], ["/2"]]);
  });

  it("retries a bodiless request when the server drops a reused connection as the request arrives", async () => {
    const server = await rawAnswering((socket, _path, connection, count) => {
      if (count > 0) socket.destroy();
      else socket.write(lengthResponse(`connection ${String(connection)}`));
    });
    const origins = client();
    assert.equal((await get(origins, server.address, "/1")).body.toString(), "connection 0");
    const outcome = await get(origins, server.address, "/2");
    assert.equal(outcome.body.toString(), "connection 1");
    assert.deepEqual(server.heads, [["/1", "/2"], ["/2"]]);
  });

  it("retries only once", async () => {
    let answered = 0;
    const server = await rawAnswering((socket) => {
      if (answered++ > 0) socket.destroy();
      else socket.write(lengthResponse("first"));
    });
    const origins = client();
    await get(origins, server.address, "/1");
    assertFailed(await send(origins, server.address, { path: "/2" }).done);
    await sleep(100);
    assert.deepEqual(server.heads, [["/1", "/2"], ["/2"]]);
  });

  it("does not retry a request with a body when the server closed the reused connection right after the previous response", async () => {
    const server = await rawAnswering((socket, _path, connection) => {
      if (socket.writableEnded) return;
      socket.write(lengthResponse(`connection ${String(connection)}`));
      socket.end();
    });
    const origins = client();
    const body = syncBody("hello");
    let second: Pending | undefined;
    await send(origins, server.address, { path: "/1" }, {
      onEnd: () => (second = send(origins, server.address, { method: "POST", path: "/2", headers: { host: "origin.test", "content-length": "5" }, body })),
    }).done;
    assert.ok(second);
    assertFailed(await second.done);
    assert.equal(body.stopped, true, "the body is stopped");
    await sleep(100);
    assert.equal(server.sockets.length, 1, "no second connection");
  });

  it("does not retry a request with a body when the server drops a reused connection as the request arrives", async () => {
    const server = await rawAnswering((socket, _path, _connection, count) => {
      if (count > 0) socket.destroy();
      else socket.write(lengthResponse("first"));
    });
    const origins = client();
    await get(origins, server.address, "/1");
    const outcome = await send(origins, server.address, { method: "POST", path: "/2", headers: { host: "origin.test" }, body: bodySource([Buffer.from("data")]) }).done;
    assertFailed(outcome);
    await sleep(100);
    assert.equal(server.sockets.length, 1, "no second connection");
  });

  it("drops a pooled connection the server closed while it was idle", async () => {
    const server = await rawAnswering((socket, path) => {
      socket.write(lengthResponse(path));
      if (path === "/1") setTimeout(() => socket.end(), 10);
    });
    const origins = client();
    await get(origins, server.address, "/1");
    await until(() => server.closedAt[0] !== undefined, "the server's close");
    await sleep(20);
    assert.equal((await get(origins, server.address, "/2")).body.toString(), "/2");
    assert.deepEqual(server.heads, [["/1"], ["/2"]], "the closed connection was not tried");
  });
});

describe("Origins: a connection paused at the end of its response", () => {
  it("is read again once pooled, so that its backend closing it is noticed before a request with a body is sent on it", async () => {
    // The backend answers, then closes the connection soon after without saying so.
    const server = await rawAnswering((socket) => {
      socket.write(lengthResponse("ok"));
      setTimeout(() => socket.destroy(), 50).unref();
    });
    const origins = client();
    // The handler asks for a pause on the last piece of the body: the connection goes back paused.
    const first = await send(origins, server.address, {}, { onData: () => false }).done;
    assert.equal(first.status, 200);
    await until(() => server.open() === 0, "the backend closed the connection");
    await sleep(50);
    // A body is never sent twice: had the pooled connection stayed paused, this would fail on it.
    const post = await send(origins, server.address, { method: "POST", path: "/post", headers: { host: "origin.test", "content-length": "5" }, body: syncBody("hello") }).done;
    assert.equal(post.error, undefined, `the POST went on a live connection, got ${String(post.error?.message)}`);
    assert.equal(post.status, 200);
    assert.equal(server.sockets.length, 2, "a new connection carried the POST");
  });
});

describe("Origins: failures", () => {
  it("reports a refused connection with ECONNREFUSED", async () => {
    const origins = client();
    const outcome = await send(origins, { host: "127.0.0.1", port: await freePort() }).done;
    assertFailed(outcome, "ECONNREFUSED");
    assert.deepEqual(outcome.events, ["error"]);
  });

  it("times out a response whose head does not come within headersTimeoutMs, and closes its connection", async () => {
    const server = await rawServer(() => undefined);
    const origins = client({ headersTimeoutMs: 300 });
    const start = performance.now();
    const outcome = await send(origins, server.address).done;
    const elapsed = performance.now() - start;
    assertFailed(outcome, ORIGIN_TIMEOUT);
    assert.deepEqual(outcome.events, ["error"]);
    assert.ok(elapsed >= 290 && elapsed < 1500, `timed out after ${elapsed.toFixed(0)} ms`);
    await until(() => server.closedAt[0] !== undefined, "the client to close the connection");
  });

  it("times out a response whose head stops halfway", async () => {
    const server = await rawAnswering((socket) => socket.write("HTTP/1.1 200 OK\r\nContent-"));
    const origins = client({ headersTimeoutMs: 300 });
    assertFailed(await send(origins, server.address).done, ORIGIN_TIMEOUT);
  });

  it("does not time out a response whose head came, however slow its body", async () => {
    const server = await rawAnswering((socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nsl");
      setTimeout(() => socket.write("ow"), 500);
    });
    const origins = client({ headersTimeoutMs: 200 });
    const outcome = await send(origins, server.address).done;
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.body.toString(), "slow");
  });

  it("refuses garbage instead of a response with ORIGIN_PROTOCOL and closes the connection", async () => {
    const server = await rawAnswering((socket) => socket.write("NOT HTTP\r\n\r\n"));
    const origins = client();
    const outcome = await send(origins, server.address).done;
    assertFailed(outcome, ORIGIN_PROTOCOL);
    assert.deepEqual(outcome.events, ["error"]);
    await until(() => server.closedAt[0] !== undefined, "the client to close the connection");
  });

  it("refuses a 101 to a plain request with ORIGIN_PROTOCOL", async () => {
    const server = await rawAnswering((socket) => socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"));
    assertFailed(await send(client(), server.address).done, ORIGIN_PROTOCOL);
  });

  it("refuses a response head that goes on past 64 KiB with ORIGIN_PROTOCOL", async () => {
    const server = await rawAnswering((socket) => socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(70_000)}`));
    const outcome = await send(client(), server.address).done;
    assertFailed(outcome, ORIGIN_PROTOCOL);
    assert.deepEqual(outcome.events, ["error"]);
  });

  // A head whose end arrives in the same read as the limit is crossed (70 KiB written at once, read
  // as 64 KiB and the rest) is refused too, not only one that never ends.
  it("refuses a complete response head of more than 64 KiB with ORIGIN_PROTOCOL", async () => {
    const server = await rawAnswering((socket) => socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(70_000)}\r\nContent-Length: 2\r\n\r\nok`));
    const outcome = await send(client(), server.address).done;
    assertFailed(outcome, ORIGIN_PROTOCOL);
  });

  it("refuses a malformed chunked body with ORIGIN_PROTOCOL after the head", async () => {
    const server = await rawAnswering((socket) => socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n"));
    const outcome = await send(client(), server.address).done;
    assertFailed(outcome, ORIGIN_PROTOCOL);
    assert.equal(outcome.events[0], "head");
  });

  it("refuses a Content-Length that is not a number with ORIGIN_PROTOCOL", async () => {
    const server = await rawAnswering((socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\nhello"));
    assertFailed(await send(client(), server.address).done, ORIGIN_PROTOCOL);
  });

  it("fails a request whose server hangs up without answering", async () => {
    const server = await rawAnswering((socket) => socket.end());
    const outcome = await send(client(), server.address).done;
    assertFailed(outcome);
    assert.deepEqual(outcome.events, ["error"]);
    assert.equal(server.sockets.length, 1, "a new connection is not retried");
  });

  it("fails a request whose server resets the connection without answering", async () => {
    const server = await rawAnswering((socket) => socket.resetAndDestroy());
    assertFailed(await send(client(), server.address).done);
  });

  it("fails a response whose body is cut short by the close of the connection", async () => {
    const server = await rawAnswering((socket) => socket.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"));
    const outcome = await send(client(), server.address).done;
    assertFailed(outcome, ORIGIN_RESET);
    assert.equal(outcome.events[0], "head");
    assert.equal(outcome.body.toString(), "short");
  });

  it("fails a chunked body cut short by the close of the connection", async () => {
    const server = await rawAnswering((socket) => socket.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"));
    const outcome = await send(client(), server.address).done;
    assertFailed(outcome);
    assert.equal(outcome.body.toString(), "hello");
  });
});

describe("Origins: the pool", () => {
  it("closes an idle pooled connection after keepAliveMs", async () => {
    const server = await rawAnswering((socket) => socket.write(lengthResponse("ok")));
    const origins = client({ keepAliveMs: 200, headersTimeoutMs: 1000 });
    let endedAt = 0;
    await send(origins, server.address, {}, { onEnd: () => (endedAt = performance.now()) }).done;
    await sleep(100);
    assert.equal(server.closedAt[0], undefined, "open 100 ms after the response");
    await until(() => server.closedAt[0] !== undefined, "the idle connection's close", 1500);
    const idle = (server.closedAt.at(0) ?? Number.NaN) - endedAt;
    assert.ok(idle >= 190 && idle < 1000, `closed after ${idle.toFixed(0)} ms idle`);
  });

  it("keeps a connection in use past keepAliveMs", async () => {
    const server = await rawAnswering((socket) => socket.write(lengthResponse("ok")));
    const origins = client({ keepAliveMs: 200, headersTimeoutMs: 1000 });
    for (let i = 0; i < 6; i++) {
      await get(origins, server.address, `/${String(i)}`);
      await sleep(80);
    }
    assert.equal(server.sockets.length, 1, "every request reused the connection");
  });

  for (const [maxIdlePerAddress, kept] of [
    [2, 2],
    [undefined, 5],
  ] as const) {
    it(`keeps ${String(kept)} of 5 connections idle with maxIdlePerAddress ${String(maxIdlePerAddress)}`, async () => {
      const waiting: Socket[] = [];
      const server = await rawAnswering((socket) => {
        // Answered together once all five are asked, so five connections are in use at once.
        waiting.push(socket);
        if (waiting.length === 5) for (const one of waiting) one.write(lengthResponse("ok"));
      });
      const origins = client(maxIdlePerAddress === undefined ? {} : { maxIdlePerAddress });
      const outcomes = await Promise.all(Array.from({ length: 5 }, (_, i) => send(origins, server.address, { path: `/${String(i)}` }).done));
      for (const outcome of outcomes) assert.equal(outcome.body.toString(), "ok");
      assert.equal(server.sockets.length, 5);
      await until(() => server.open() === kept, `${String(kept)} open connections`);
      await sleep(100);
      assert.equal(server.open(), kept);
    });
  }

  it("serves concurrent requests on separate connections and reuses them afterwards", async () => {
    const server = await rawAnswering((socket, path) => setTimeout(() => socket.write(lengthResponse(path)), 20));
    const origins = client();
    const first = await Promise.all(["/a", "/b", "/c"].map((path) => get(origins, server.address, path)));
    assert.deepEqual(
      first.map((one) => one.body.toString()),
      ["/a", "/b", "/c"],
    );
    const second = await Promise.all(["/d", "/e", "/f"].map((path) => get(origins, server.address, path)));
    assert.deepEqual(
      second.map((one) => one.body.toString()),
      ["/d", "/e", "/f"],
    );
    assert.equal(server.sockets.length, 3);
  });
});

describe("Origins: back-pressure", () => {
  it("stops reading while onData has asked for a pause, and reads on after resume()", async () => {
    const SIZE = 8 * 1024 * 1024;
    const body = Buffer.alloc(SIZE);
    for (let i = 0; i < SIZE; i += 4) body.writeUInt32LE(i, i);
    const server = await rawAnswering((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${String(SIZE)}\r\n\r\n`);
      socket.write(body);
    });
    const origins = client();
    let flowing = false;
    let calls = 0;
    let firstData: () => void = () => undefined;
    const gotData = new Promise<void>((resolve) => (firstData = resolve));
    const pending = send(origins, server.address, {}, {
      onData() {
        calls++;
        firstData();
        return flowing;
      },
    });
    await gotData;
    await sleep(50);
    const callsPaused = calls;
    await sleep(200);
    assert.equal(calls, callsPaused, "no data while paused");
    assert.equal(calls, 1, "paused after the first piece");
    assert.ok(!pending.outcome.events.includes("end"), "not ended while paused");
    flowing = true;
    pending.call.resume();
    const outcome = await pending.done;
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.body.length, SIZE);
    assert.ok(outcome.body.equals(body), "the body arrived intact");
    assert.equal(server.sockets.length, 1);
  });

  it("pauses a chunked body too, and reads on after resume()", async () => {
    const piece = "x".repeat(60_000);
    const server = await rawAnswering((socket) => {
      socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      for (let i = 0; i < 100; i++) socket.write(`${(60_000).toString(16)}\r\n${piece}\r\n`);
      socket.write("0\r\n\r\n");
    });
    const origins = client();
    let flowing = false;
    let calls = 0;
    let bytes = 0;
    const pending = send(origins, server.address, {}, {
      onData(chunk) {
        calls++;
        bytes += chunk.length;
        return flowing;
      },
    });
    await until(() => calls > 0, "the first piece");
    await sleep(50);
    const paused = bytes;
    await sleep(200);
    assert.equal(bytes, paused, "no data while paused");
    assert.ok(paused < 6_000_000, `paused with ${String(paused)} bytes read`);
    flowing = true;
    pending.call.resume();
    const outcome = await pending.done;
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.body.length, 6_000_000);
  });
});

describe("Origins: request bodies", () => {
  it("sends a body with a Content-Length as it is", async () => {
    const expected = "POST /up HTTP/1.1\r\nhost: origin.test\r\ncontent-length: 11\r\n\r\nhello world";
    let received = "";
    const server = await rawServer((socket) => {
      socket.on("data", (chunk: Buffer) => {
        received += chunk.toString("latin1");
        if (received.length >= expected.length) socket.write(lengthResponse("got it"));
      });
    });
    const body = bodySource([Buffer.from("hello"), Buffer.from(" world")]);
    const outcome = await send(client(), server.address, { method: "POST", path: "/up", headers: { host: "origin.test", "content-length": "11" }, body }).done;
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.body.toString(), "got it");
    assert.equal(received, expected);
  });

  it("sends a body without a Content-Length chunked", async () => {
    const expected = "POST /up HTTP/1.1\r\nhost: origin.test\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let received = "";
    const server = await rawServer((socket) => {
      socket.on("data", (chunk: Buffer) => {
        received += chunk.toString("latin1");
        if (received.endsWith("0\r\n\r\n")) socket.write(lengthResponse("got it"));
      });
    });
    const body = bodySource([Buffer.from("hello"), Buffer.alloc(0), Buffer.from(" world")]);
    const outcome = await send(client(), server.address, { method: "POST", path: "/up", headers: { host: "origin.test" }, body }).done;
    assert.equal(outcome.error, undefined);
    assert.equal(received, expected);
  });

  for (const withLength of [true, false]) {
    it(`delivers a 4 MiB body ${withLength ? "with" : "without"} a Content-Length exactly, pausing the source when the socket is full`, async () => {
      const server = await echoServer();
      const data = Buffer.alloc(4 * 1024 * 1024);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 11)) & 0xff;
      const chunks: Buffer[] = [];
      for (let at = 0; at < data.length; at += 65_536) chunks.push(data.subarray(at, at + 65_536));
      const body = bodySource(chunks);
      const headers = withLength ? { host: "origin.test", "content-length": String(data.length) } : { host: "origin.test" };
      const origins = client();
      const outcome = await send(origins, server.address, { method: "PUT", path: "/big", headers, body }).done;
      assert.equal(outcome.error, undefined);
      const echoed = JSON.parse(outcome.body.toString()) as { method: string; te: string | null; cl: string | null; length: number; sha: string };
      assert.equal(echoed.method, "PUT");
      assert.equal(echoed.te, withLength ? null : "chunked");
      assert.equal(echoed.cl, withLength ? String(data.length) : null);
      assert.equal(echoed.length, data.length);
      assert.equal(echoed.sha, sha256(data));
      assert.ok(body.pauses > 0 && body.resumes > 0, `paused ${String(body.pauses)} and resumed ${String(body.resumes)} times`);
      // The whole exchange is over, so the connection serves the next request.
      await get(origins, server.address, "/after");
      assert.equal(server.connections(), 1);
    });
  }

  it("stops a body the server answered before reading, and does not pool the connection", async () => {
    const server = await rawAnswering((socket) => socket.write(lengthResponse("early")));
    const body = bodySource([]);
    body.start = () => undefined; // never sends anything
    const origins = client();
    const outcome = await send(origins, server.address, { method: "POST", path: "/early", headers: { host: "origin.test" }, body }).done;
    assert.equal(outcome.body.toString(), "early");
    assert.equal(body.stopped, true);
    await until(() => server.closedAt[0] !== undefined, "the client to close the connection");
  });

  it("fails the request when its body fails", async () => {
    const server = await rawServer(() => undefined);
    const body: BodySource = {
      start: (sink) => setImmediate(() => sink.error(new Error("the client went away"))),
      resume: () => undefined,
      stop: () => undefined,
    };
    const outcome = await send(client(), server.address, { method: "POST", path: "/", headers: { host: "origin.test" }, body }).done;
    assertFailed(outcome, ORIGIN_RESET);
    await until(() => server.closedAt[0] !== undefined, "the client to close the connection");
  });
});

describe("Origins: abort and close", () => {
  it("closes the connection on abort() during the body, and the handler hears nothing more", async () => {
    const server = await rawAnswering((socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst");
      // Late, so that the client, not this, must be what closes the connection promptly.
      const more = setTimeout(() => socket.write("more"), 300);
      socket.on("close", () => clearTimeout(more));
    });
    const origins = client({ headersTimeoutMs: 100 });
    const pending: Pending = send(origins, server.address, {}, {
      onData: () => {
        pending.call.abort();
        return true;
      },
    });
    await until(() => server.closedAt[0] !== undefined, "the client to close the connection", 150);
    await sleep(200);
    assert.deepEqual(pending.outcome.events, ["head", "data"]);
    pending.call.abort(); // a second abort is harmless
    assert.deepEqual(pending.outcome.events, ["head", "data"]);
  });

  it("closes the connection on abort() before the head, and no timeout is heard afterwards", async () => {
    const server = await rawServer((socket) => socket.on("data", () => undefined));
    const origins = client({ headersTimeoutMs: 100 });
    const pending = send(origins, server.address);
    await until(() => server.sockets.length === 1, "the connection");
    pending.call.abort();
    await until(() => server.closedAt[0] !== undefined, "the client to close the connection");
    await sleep(300);
    assert.deepEqual(pending.outcome.events, []);
  });

  it("closes the connection on abort() from onHead, before any body is delivered", async () => {
    const server = await rawAnswering((socket) => socket.write(lengthResponse("the body")));
    const origins = client();
    const pending: Pending = send(origins, server.address, {}, { onHead: () => pending.call.abort() });
    await until(() => server.closedAt[0] !== undefined, "the client to close the connection");
    await sleep(50);
    assert.deepEqual(pending.outcome.events, ["head"]);
    // The aborted connection is not pooled.
    await get(origins, server.address, "/next");
    assert.equal(server.sockets.length, 2);
  });

  it("fails requests in flight and closes pooled connections on close(), and fails later requests", async () => {
    const pooled = await rawAnswering((socket) => socket.write(lengthResponse("ok")));
    const busy = await rawAnswering((socket, path) => {
      if (path === "/partial") socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome");
    });
    const origins = new Origins({ headersTimeoutMs: 5000 });
    cleanups.push(() => origins.close());
    await get(origins, pooled.address);
    const silent = send(origins, busy.address, { path: "/silent" });
    const partial = send(origins, busy.address, { path: "/partial" });
    await until(() => partial.outcome.events.includes("data") && busy.heads.flat().length === 2, "both requests in flight");
    assert.equal(pooled.closedAt[0], undefined, "the pooled connection is open before close()");
    origins.close();
    assertFailed(await silent.done, ORIGIN_RESET);
    assertFailed(await partial.done, ORIGIN_RESET);
    assert.deepEqual(silent.outcome.events, ["error"]);
    assert.deepEqual(partial.outcome.events, ["head", "data", "error"]);
    await until(() => pooled.open() === 0 && busy.open() === 0, "every upstream connection closed");
    const later = send(origins, pooled.address);
    assert.deepEqual(later.outcome.events, [], "the error comes asynchronously");
    assertFailed(await later.done, ORIGIN_RESET);
    assert.equal(pooled.sockets.length, 1, "no connection after close()");
  });
});
