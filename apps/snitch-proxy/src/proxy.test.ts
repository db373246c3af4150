import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket, WebSocketServer } from "ws";
import { ComponentStats, parseJson } from "@coyote/spec";
import { startProxy, type RunningProxy } from "./proxy.ts";
import { backend, get1, get2, peerCertificate, put, sandbox, session2, type Backend, type Sandbox } from "./test/support.ts";

describe("snitch-proxy", () => {
  let box: Sandbox;
  let proxy: RunningProxy;
  let a: Backend;
  let b: Backend;
  let port: number;

  before(async () => {
    box = await sandbox();
    a = await backend("alpha", (req, res, _body) => {
      if (req.url === "/hop") {
        res.writeHead(200, { connection: "x-private, keep-alive", "x-private": "secret", "keep-alive": "timeout=77", "x-public": "yes", "content-length": 2 });
        res.end("ok");
        return true;
      }
      if (req.url === "/big") {
        const chunk = Buffer.alloc(64 * 1024, "x");
        res.writeHead(200, { "content-type": "application/octet-stream" });
        let sent = 0;
        const pump = () => {
          while (sent < 80) {
            sent++;
            if (!res.write(chunk)) return void res.once("drain", pump);
          }
          res.end();
        };
        pump();
        return true;
      }
      if (req.url === "/count") {
        res.end(String(Buffer.byteLength(_body)));
        return true;
      }
      if (req.url === "/slow") {
        setTimeout(() => res.end("late"), 2000).unref();
        return true;
      }
      return false;
    });
    b = await backend("beta");
    await box.certify("alpha.test");
    await box.certify("beta.test");
    await box.certify("*.wild.test");
    await box.certify("nocert-route.test");
    await box.routes([
      { host: "alpha.test", pathPrefix: "/", serviceId: "alpha", upstream: { kind: "address", address: a.address } },
      { host: "alpha.test", pathPrefix: "/beta", serviceId: "beta", upstream: { kind: "address", address: b.address } },
      { host: "beta.test", pathPrefix: "/", serviceId: "beta", upstream: { kind: "address", address: b.address } },
      { host: "one.wild.test", pathPrefix: "/", serviceId: "alpha", upstream: { kind: "address", address: a.address } },
      { host: "two.wild.test", pathPrefix: "/", serviceId: "beta", upstream: { kind: "address", address: b.address } },
      { host: "down.alpha.test", pathPrefix: "/", serviceId: "alpha", upstream: { kind: "address", address: "127.0.0.1:1" } },
    ]);
    await box.certify("down.alpha.test");
    proxy = await startProxy({
      stateDir: box.stateDir,
      logger: box.logger,
      https: { host: "127.0.0.1", port: 0 },
      http: { host: "127.0.0.1", port: 0 },
      upstreamTimeoutMs: 500,
      headersTimeoutMs: 800,
      statsIntervalMs: 200,
    });
    port = proxy.httpsAddress.port;
  });

  after(async () => {
    await proxy.stop(1000);
    await a.close();
    await b.close();
    await box.cleanup();
  });

  it("forwards HTTP/1.1 by host and the longest path prefix, with X-Forwarded-* and a request id", async () => {
    const one = await get1(port, "alpha.test", box.ca.certificatePem, "/x?q=1");
    assert.equal(one.status, 200);
    assert.equal(one.body, "alpha GET /x?q=1 ");
    const two = await get1(port, "alpha.test", box.ca.certificatePem, "/beta/y");
    assert.equal(two.body, "beta GET /beta/y ");
    const notPrefix = await get1(port, "alpha.test", box.ca.certificatePem, "/betamax");
    assert.equal(notPrefix.body, "alpha GET /betamax ");
    const seen = b.seen.at(-1);
    assert.ok(seen);
    assert.equal(seen.headers["x-forwarded-proto"], "https");
    assert.equal(seen.headers["x-forwarded-host"], "alpha.test");
    assert.equal(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert.equal(seen.headers.host, "alpha.test");
    assert.match(String(seen.headers["x-request-id"]), /^[A-Za-z0-9_-]{16}$/);
    assert.equal(two.headers["x-request-id"], seen.headers["x-request-id"]);
  });

  it("forwards HTTP/2 requests, bodies included, with :authority as the host", async () => {
    const session = await session2(port, "beta.test", box.ca.certificatePem);
    try {
      const answers = await Promise.all([get2(session, "/h2"), get2(session, "/post", {}, "payload")]);
      assert.deepEqual(answers.map((x) => [x.status, x.body]), [[200, "beta GET /h2 "], [200, "beta POST /post payload"]]);
      assert.match(String(b.seen.at(-1)?.headers.host), /^beta\.test(:\d+)?$/);
    } finally {
      session.close();
    }
  });

  it("streams large bodies both ways, chunked and with a length, over HTTP/1.1 and HTTP/2", async () => {
    const big = await get1(port, "alpha.test", box.ca.certificatePem, "/big");
    assert.equal(big.status, 200);
    assert.equal(Buffer.byteLength(big.body), 80 * 64 * 1024);
    const upload = "y".repeat(3 * 1024 * 1024);
    const counted = await get1(port, "alpha.test", box.ca.certificatePem, "/count", { method: "PUT", body: upload });
    assert.equal(counted.body, String(upload.length));
    const session = await session2(port, "alpha.test", box.ca.certificatePem);
    try {
      const [h2big, h2count] = await Promise.all([get2(session, "/big"), get2(session, "/count", {}, upload)]);
      assert.equal(Buffer.byteLength(h2big.body), 80 * 64 * 1024);
      assert.equal(h2count.body, String(upload.length));
    } finally {
      session.close();
    }
  });

  it("drops hop-by-hop headers and those named in Connection, both ways", async () => {
    const answer = await get1(port, "alpha.test", box.ca.certificatePem, "/hop", { headers: { connection: "x-client-private", "x-client-private": "1", "x-client-public": "1", te: "trailers", "proxy-authorization": "Basic x" } });
    assert.equal(answer.headers["x-public"], "yes");
    assert.equal(answer.headers["x-private"], undefined);
    assert.notEqual(answer.headers["keep-alive"], "timeout=77");
    const seen = a.seen.at(-1);
    assert.ok(seen);
    assert.equal(seen.headers["x-client-public"], "1");
    assert.equal(seen.headers["x-client-private"], undefined);
    assert.equal(seen.headers.te, undefined);
    assert.equal(seen.headers["proxy-authorization"], undefined);
    // Over HTTP/2 the same upstream answer must not make Node's HTTP/2 response throw.
    const session = await session2(port, "alpha.test", box.ca.certificatePem);
    try {
      const h2 = await get2(session, "/hop");
      assert.equal(h2.status, 200);
      assert.equal(h2.headers["x-private"], undefined);
    } finally {
      session.close();
    }
  });

  it("serves each host its own certificate, wildcards only below their parent, and no certificate to a host without one", async () => {
    assert.equal((await peerCertificate(port, "alpha.test", box.ca.certificatePem)).subject.CN, "alpha.test");
    assert.equal((await peerCertificate(port, "beta.test", box.ca.certificatePem)).subject.CN, "beta.test");
    assert.equal((await peerCertificate(port, "one.wild.test", box.ca.certificatePem)).subject.CN, "*.wild.test");
    await assert.rejects(peerCertificate(port, "wild.test", box.ca.certificatePem), /alert|handshake|socket/i);
    await assert.rejects(peerCertificate(port, "a.b.wild.test", box.ca.certificatePem), /alert|handshake|socket/i);
    await assert.rejects(peerCertificate(port, "unknown.test", box.ca.certificatePem), /alert|handshake|socket/i);
    await assert.rejects(peerCertificate(port, undefined, box.ca.certificatePem), /alert|handshake|socket|certificate/i);
  });

  it("answers 421 when the Host is not the site the connection was made for", async () => {
    const answer = await get1(port, "beta.test", box.ca.certificatePem, "/", { servername: "alpha.test" });
    assert.equal(answer.status, 421);
    // Siblings under one wildcard certificate may share a connection (HTTP/2 coalescing).
    const sibling = await get1(port, "two.wild.test", box.ca.certificatePem, "/", { servername: "one.wild.test" });
    assert.equal(sibling.body, "beta GET / ");
  });

  it("answers 400 to a malformed Host, 404 to a host without a route, 431 to huge headers", async () => {
    const bad = await get1(port, "alpha.test", box.ca.certificatePem, "/", { headers: { host: "alpha.test:x" }, servername: "alpha.test" });
    assert.equal(bad.status, 400);
    await box.certify("nowhere.test");
    const none = await get1(port, "nowhere.test", box.ca.certificatePem);
    assert.equal(none.status, 404);
    assert.match(none.body, /No site here/);
    const huge = await get1(port, "alpha.test", box.ca.certificatePem, "/", { headers: { "x-big": "a".repeat(40_000) } });
    assert.equal(huge.status, 431);
    const session = await session2(port, "alpha.test", box.ca.certificatePem);
    try {
      const h2 = await get2(session, "/", { "x-big": "a".repeat(40_000) }).then((answer) => answer.status, (error: unknown) => String(error));
      assert.ok(h2 === 431 || /ENHANCE_YOUR_CALM|PROTOCOL_ERROR|COMPRESSION|closed|reset/i.test(String(h2)), `HTTP/2 headers over the limit are refused, got ${String(h2)}`);
    } finally {
      session.destroy();
    }
    assert.equal((await get1(port, "alpha.test", box.ca.certificatePem)).status, 200);
  });

  it("answers 502 when the backend is down and 504 when it is too slow", async () => {
    const down = await get1(port, "down.alpha.test", box.ca.certificatePem);
    assert.equal(down.status, 502);
    assert.match(down.body, /Bad gateway/);
    assert.equal(down.headers["content-type"], "text/html; charset=utf-8");
    const slow = await get1(port, "alpha.test", box.ca.certificatePem, "/slow");
    assert.equal(slow.status, 504);
    assert.match(slow.body, /Gateway timeout/);
  });

  it("closes a slowloris connection after the headers timeout while other clients are served", async () => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername: "alpha.test", ca: box.ca.certificatePem, ALPNProtocols: ["http/1.1"] });
    await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
    const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now())));
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => undefined);
    const start = Date.now();
    socket.write("GET / HTTP/1.1\r\nHost: alpha.test\r\n");
    const drip = setInterval(() => socket.writable && socket.write("X-Drip: 1\r\n"), 200);
    try {
      const meanwhile = await get1(port, "alpha.test", box.ca.certificatePem);
      assert.equal(meanwhile.status, 200);
      const end = await Promise.race([closed, sleep(5000).then(() => 0)]);
      assert.ok(end > 0, "the slow connection was closed");
      assert.ok(end - start < 4000, `closed after ${end - start} ms`);
      const text = Buffer.concat(chunks).toString("utf8");
      assert.ok(text === "" || text.startsWith("HTTP/1.1 408"), `a slow client gets 408 or a close, got ${text.slice(0, 40)}`);
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
  });

  it("closes a connection that never finishes its TLS handshake", async () => {
    const slow = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "127.0.0.1", port: 0 }, handshakeTimeoutMs: 300, writeStats: false });
    try {
      const socket = netConnect(slow.httpsAddress.port, "127.0.0.1");
      const closed = await Promise.race([new Promise<boolean>((resolve) => socket.once("close", () => resolve(true))), sleep(3000).then(() => false)]);
      socket.destroy();
      assert.ok(closed, "the silent connection was closed");
    } finally {
      await slow.stop(100);
    }
  });

  it("proxies websockets over an HTTP/1.1 upgrade", async () => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => wss.once("listening", resolve));
    wss.on("connection", (ws) => ws.on("message", (data: Buffer) => ws.send(`echo ${data.toString("utf8")}`)));
    const wsPort = (wss.address() as { port: number }).port;
    await box.certify("ws.test");
    await box.routes([
      { host: "alpha.test", pathPrefix: "/", serviceId: "alpha", upstream: { kind: "address", address: a.address } },
      { host: "ws.test", pathPrefix: "/", serviceId: "ws", upstream: { kind: "address", address: `127.0.0.1:${wsPort}` } },
    ]);
    await proxy.reloadRoutes();
    try {
      // SNI and Host of the site, over loopback (ws passes TLS options through to tls.connect).
      const tlsOptions = { ca: box.ca.certificatePem, servername: "ws.test", headers: { host: "ws.test" } };
      const client = new WebSocket(`wss://127.0.0.1:${port}/chat`, tlsOptions);
      await new Promise<void>((resolve, reject) => client.once("open", resolve).once("error", reject));
      const replies: string[] = [];
      const got = new Promise<void>((resolve) => client.on("message", (data: Buffer) => {
        replies.push(data.toString("utf8"));
        if (replies.length === 3) resolve();
      }));
      for (const word of ["one", "two", "three"]) client.send(word);
      await got;
      assert.deepEqual(replies, ["echo one", "echo two", "echo three"]);
      assert.equal(proxy.stats.hosts()["ws.test"]?.openConnections, 1);
      client.close();
      await new Promise((resolve) => client.once("close", resolve));
    } finally {
      wss.close();
    }
  });

  it("serves ACME challenges over plain HTTP and redirects the rest to HTTPS", async () => {
    const httpPort = proxy.httpAddress?.port ?? 0;
    await put(join(box.stateDir, "proxy", "challenges", "tok-123_AB"), "tok-123_AB.thumb");
    const plain = (path: string, host = "alpha.test") => new Promise<{ status: number; location?: string; body: string }>((resolve, reject) => {
      const socket = netConnect(httpPort, "127.0.0.1", () => socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
      const chunks: Buffer[] = [];
      socket.on("data", (c: Buffer) => chunks.push(c));
      socket.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ status: Number(text.slice(9, 12)), location: /\r\nlocation: (\S+)/i.exec(text)?.[1], body: text.slice(text.indexOf("\r\n\r\n") + 4) });
      });
      socket.on("error", reject);
    });
    const challenge = await plain("/.well-known/acme-challenge/tok-123_AB");
    assert.deepEqual([challenge.status, challenge.body], [200, "tok-123_AB.thumb"]);
    assert.equal((await plain("/.well-known/acme-challenge/unknown")).status, 404);
    assert.equal((await plain("/.well-known/acme-challenge/..%2Fcerts")).status, 404);
    const redirect = await plain("/page?x=1");
    assert.deepEqual([redirect.status, redirect.location], [308, "https://alpha.test/page?x=1"]);
    assert.equal((await plain("/", "bad host")).status, 400);
  });

  it("writes per-host stats: requests, bytes, status classes and a latency histogram", async () => {
    await sleep(500);
    const stats = parseJson(ComponentStats, await readFile(join(box.stateDir, "stats", "snitch-proxy.json"), "utf8"), "stats");
    const alpha = stats.hosts?.["alpha.test"];
    assert.ok(alpha, "alpha.test has stats");
    assert.ok(alpha.requests >= 5);
    assert.ok(alpha.status["2xx"] >= 3 && alpha.status["4xx"] >= 1 && alpha.status["5xx"] >= 1);
    assert.ok(alpha.bytesOut > 0);
    assert.equal(alpha.latencyCounts.reduce((x, y) => x + y, 0), alpha.requests);
    assert.ok((stats.counters?.tlsErrors ?? 0) >= 1);
  });

  it("keeps the last good routes when routes.json is broken, and takes a fixed one", async () => {
    await writeFile(join(box.stateDir, "proxy", "routes.json"), '{"schemaVersion":1,"routes":[{"host":"bad host"}]}');
    await proxy.reloadRoutes();
    assert.equal((await get1(port, "alpha.test", box.ca.certificatePem)).status, 200);
    const log = await readFile(join(box.stateDir, "logs", "snitch-proxy.log"), "utf8");
    assert.match(log, /"msg":"routes file refused; the previous routes stay in service"/);
    assert.match(log, /proxy\/routes.json: .*routes\[0\].host: not a valid web hostname/);
    await box.routes([{ host: "alpha.test", pathPrefix: "/", serviceId: "beta", upstream: { kind: "address", address: b.address } }]);
    await proxy.reloadRoutes();
    assert.equal((await get1(port, "alpha.test", box.ca.certificatePem)).body, "beta GET / ");
  });

  it("changes its connection limit live", async () => {
    proxy.setMaxConnections(1);
    const hold = tlsConnect({ host: "127.0.0.1", port, servername: "alpha.test", ca: box.ca.certificatePem });
    await new Promise<void>((resolve, reject) => hold.once("secureConnect", resolve).once("error", reject));
    await assert.rejects(get1(port, "alpha.test", box.ca.certificatePem), /socket|ECONNRESET|disconnected/i);
    proxy.setMaxConnections(100);
    assert.equal((await get1(port, "alpha.test", box.ca.certificatePem)).status, 200);
    hold.destroy();
    await box.routes([{ host: "alpha.test", pathPrefix: "/", serviceId: "beta", upstream: { kind: "address", address: b.address } }], { maxConnections: 1 });
    await proxy.reloadRoutes();
    const hold2 = tlsConnect({ host: "127.0.0.1", port, servername: "alpha.test", ca: box.ca.certificatePem });
    await new Promise<void>((resolve, reject) => hold2.once("secureConnect", resolve).once("error", reject));
    await assert.rejects(get1(port, "alpha.test", box.ca.certificatePem), /socket|ECONNRESET|disconnected/i);
    hold2.destroy();
    proxy.setMaxConnections(10_000);
  });
});
