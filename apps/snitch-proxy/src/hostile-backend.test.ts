// A backend is not trusted: whatever it answers, the client gets a valid answer (its own or a
// 502), the upstream connection is not reused, and the proxy goes on serving everyone else.
// Real sockets on both sides: a raw backend writes exact bytes, clients speak HTTP/1.1 and HTTP/2.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ClientHttp2Session } from "node:http2";
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { startProxy, type RunningProxy } from "./proxy.ts";
import { get1, get2, sandbox, session2, type Sandbox } from "./test/support.ts";
import { rawBackend, type RawBackend } from "./test/wire-client.ts";

const H = "hostile.test";

/** The hostile answers, by path. */
const ANSWERS: Record<string, string> = {
  "/status-1000": "HTTP/1.1 1000 Huge\r\nContent-Length: 2\r\n\r\nno",
  "/status-42": "HTTP/1.1 42 Small\r\nContent-Length: 2\r\n\r\nno",
  "/status-999": "HTTP/1.1 999 Unknown\r\nContent-Length: 2\r\n\r\nno",
  "/status-600": "HTTP/1.1 600 Unknown\r\nContent-Length: 2\r\n\r\nno",
  "/bad-name": "HTTP/1.1 200 OK\r\nX Bad(Name): 1\r\nContent-Length: 2\r\n\r\nno",
  "/bare-cr": "HTTP/1.1 200 OK\r\nX-Value: a\rb\r\nContent-Length: 2\r\n\r\nno",
  "/nul": "HTTP/1.1 200 OK\r\nX-Value: a\u0000b\r\nContent-Length: 2\r\n\r\nno",
  "/many-fields": `HTTP/1.1 200 OK\r\n${Array.from({ length: 300 }, (_, i) => `X-F${String(i)}: v`).join("\r\n")}\r\nContent-Length: 2\r\n\r\nno`,
  "/interim": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
  "/switch": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
};
const INVALID = ["/status-1000", "/status-42", "/status-999", "/status-600", "/bad-name", "/bare-cr", "/nul", "/many-fields", "/switch"];

describe("snitch-proxy against a hostile backend", () => {
  let box: Sandbox;
  let proxy: RunningProxy;
  let port: number;
  let hostile: RawBackend;
  let h2: ClientHttp2Session;
  /** Which backend connection answered each path last, and which connections have closed. */
  const socketIds = new Map<Socket, number>();
  const servedBy = new Map<string, number>();
  const closedSockets = new Set<number>();

  before(async () => {
    box = await sandbox();
    hostile = await rawBackend((socket, request) => {
      let id = socketIds.get(socket);
      if (id === undefined) {
        id = socketIds.size + 1;
        socketIds.set(socket, id);
        const closedId = id;
        socket.once("close", () => closedSockets.add(closedId));
      }
      servedBy.set(request.path, id);
      const answer = ANSWERS[request.path];
      // Kept open after an answer: the proxy, not the backend, must decide not to reuse it.
      socket.write(answer ?? "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine");
    });
    await box.certify(H);
    await box.routes([{ host: H, pathPrefix: "/", serviceId: "hostile", upstream: { kind: "address", address: hostile.address } }]);
    proxy = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "127.0.0.1", port: 0 }, accessLog: false, writeStats: false, upstreamTimeoutMs: 3000 });
    port = proxy.httpsAddress.port;
    h2 = await session2(port, H, box.ca.certificatePem);
  });

  after(async () => {
    h2.close();
    await proxy.stop(300);
    await hostile.close();
    await box.cleanup();
  });

  for (const path of INVALID) {
    it(`answers 502 to an HTTP/1.1 client for ${path}, and serves a new client after`, async () => {
      const bad = await get1(port, H, box.ca.certificatePem, path);
      assert.equal(bad.status, 502, `status for ${path}`);
      assert.doesNotMatch(bad.body, /no$/);
      const good = await get1(port, H, box.ca.certificatePem, "/fine");
      assert.equal(good.status, 200);
      assert.equal(good.body, "fine");
      // The connection that carried the invalid answer was closed, not given the next request.
      const badConnection = servedBy.get(path);
      assert.notEqual(servedBy.get("/fine"), badConnection, "the invalid answer's upstream connection was reused");
      for (let i = 0; i < 100 && !closedSockets.has(badConnection ?? 0); i++) await sleep(10);
      assert.ok(closedSockets.has(badConnection ?? 0), "the invalid answer's upstream connection was closed");
    });

    it(`answers 502 to an HTTP/2 client for ${path}, and the session serves on`, async () => {
      const bad = await get2(h2, path);
      assert.equal(bad.status, 502, `status for ${path}`);
      const good = await get2(h2, "/fine");
      assert.equal(good.status, 200);
      assert.equal(good.body, "fine");
    });
  }

  it("skips interim 1xx answers and passes the final one on, over both protocols", async () => {
    const one = await get1(port, H, box.ca.certificatePem, "/interim");
    assert.equal(one.status, 200);
    assert.equal(one.body, "final");
    const two = await get2(h2, "/interim");
    assert.equal(two.status, 200);
    assert.equal(two.body, "final");
  });

  it("still serves a fresh HTTP/2 session after every invalid answer", async () => {
    const fresh = await session2(port, H, box.ca.certificatePem);
    try {
      for (const path of INVALID) assert.equal((await get2(fresh, path)).status, 502, path);
      assert.equal((await get2(fresh, "/fine")).body, "fine");
    } finally {
      fresh.close();
    }
  });
});
