// What upstreams learn about the client: the box's own routes (serviceId "server", the panel) get
// the panel's forwarding secret and the client's address; no other upstream ever gets the secret,
// and no client can send it, nor any forwarding header, over HTTP/1.1, HTTP/2 or an upgrade. The
// proxy listens on ::1 and the upstreams on 127.0.0.1, so the client's address (::1) is not the
// address the upstreams see the proxy connect from.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { connect as h2connect, type ClientHttp2Session } from "node:http2";
import { request as httpsRequest } from "node:https";
import type { IncomingHttpHeaders } from "node:http";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket, WebSocketServer } from "ws";
import { SECRET_CHECK_INTERVAL_MS, forwardingSecretFile } from "./forwarding-secret.ts";
import { startProxy, type RunningProxy } from "./proxy.ts";
import { backend, get2, sandbox, type Backend, type Sandbox } from "./test/support.ts";

const PANEL = "box.test";
const APP = "app.test";
const SECRET = "S".repeat(43);
/** What a client sends to pass itself off as the proxy, or as someone else. */
const FORGED = {
  "x-coyote-forwarded-by": "forged-forged-forged",
  "X-Coyote-Forwarded-By": "forged-again-forged",
  "x-forwarded-for": "203.0.113.7",
  "x-forwarded-port": "80",
  forwarded: "for=203.0.113.8",
  "x-real-ip": "203.0.113.9",
};

describe("forwarding to the panel", () => {
  let box: Sandbox;
  let proxy: RunningProxy;
  let panel: Backend;
  let app: Backend;
  let port: number;
  let secretFile: string;

  before(async () => {
    box = await sandbox();
    secretFile = forwardingSecretFile(box.stateDir);
    await mkdir(join(box.stateDir, "secrets"), { mode: 0o700 });
    await writeFile(secretFile, SECRET, { mode: 0o600 });
    panel = await backend("panel");
    app = await backend("app");
    await box.certify(PANEL);
    await box.certify(APP);
    await box.routes([
      { host: PANEL, pathPrefix: "/", serviceId: "server", upstream: { kind: "address", address: panel.address }, hsts: true },
      { host: APP, pathPrefix: "/", serviceId: "app", upstream: { kind: "address", address: app.address } },
    ]);
    proxy = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "::1", port: 0 }, writeStats: false, upstreamTimeoutMs: 2000 });
    port = proxy.httpsAddress.port;
  });

  after(async () => {
    await proxy.stop(500);
    await panel.close();
    await app.close();
    await box.cleanup();
  });

  /** An HTTP/1.1 request from ::1 with the forged headers; the headers its upstream received. */
  const get1From = async (host: string, to: Backend): Promise<IncomingHttpHeaders> => {
    const before = to.seen.length;
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ host: "::1", port, path: "/", servername: host, ca: box.ca.certificatePem, agent: false, timeout: 5000, headers: { host, ...FORGED } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("timeout", () => req.destroy(new Error("test client timed out")));
      req.on("error", reject);
      req.end();
    });
    assert.equal(status, 200);
    assert.equal(to.seen.length, before + 1);
    return to.seen.at(-1)?.headers ?? {};
  };

  const session2From = (host: string) =>
    new Promise<ClientHttp2Session>((resolve, reject) => {
      const session = h2connect(`https://${host}:${String(port)}`, { createConnection: () => tlsConnect({ host: "::1", port, servername: host, ca: box.ca.certificatePem, ALPNProtocols: ["h2"] }) });
      session.once("connect", () => resolve(session));
      session.once("error", reject);
    });

  /** The header values an upstream may have been told by a client: none of them may arrive. */
  const assertNothingForged = (headers: IncomingHttpHeaders) => {
    for (const value of Object.values(headers)) assert.doesNotMatch(String(value), /forged|203\.0\.113/, "a client's forwarding header reached the upstream");
    assert.equal(headers["x-forwarded-for"], "::1");
    assert.equal(headers.forwarded, undefined);
    assert.equal(headers["x-real-ip"], undefined);
    assert.equal(headers["x-forwarded-port"], undefined);
  };

  it("gives the panel the secret and the client's address over HTTP/1.1, and no other upstream the secret", async () => {
    const toPanel = await get1From(PANEL, panel);
    assert.equal(toPanel["x-coyote-forwarded-by"], SECRET);
    assert.equal(toPanel["x-forwarded-proto"], "https");
    assertNothingForged(toPanel);
    const toApp = await get1From(APP, app);
    assert.equal(toApp["x-coyote-forwarded-by"], undefined);
    assertNothingForged(toApp);
  });

  it("does the same over HTTP/2", async () => {
    for (const [host, to, secret] of [[PANEL, panel, SECRET], [APP, app, undefined]] as const) {
      const session = await session2From(host);
      try {
        const answer = await get2(session, "/h2", FORGED);
        assert.equal(answer.status, 200);
        const seen = to.seen.at(-1)?.headers ?? {};
        assert.equal(seen["x-coyote-forwarded-by"], secret);
        assertNothingForged(seen);
      } finally {
        session.close();
      }
    }
  });

  it("does the same for an upgrade (websocket)", async () => {
    const heard: IncomingHttpHeaders[] = [];
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => wss.once("listening", resolve));
    wss.on("connection", (ws, req) => {
      heard.push(req.headers);
      ws.close();
    });
    const wsAddress = `127.0.0.1:${String((wss.address() as { port: number }).port)}`;
    await box.routes([
      { host: PANEL, pathPrefix: "/", serviceId: "server", upstream: { kind: "address", address: wsAddress }, hsts: true },
      { host: APP, pathPrefix: "/", serviceId: "app", upstream: { kind: "address", address: wsAddress } },
    ]);
    await proxy.reloadRoutes();
    try {
      for (const host of [PANEL, APP]) {
        // SNI and Host of the site (ws passes TLS options through to tls.connect).
        const tlsOptions = { ca: box.ca.certificatePem, servername: host, headers: { host, ...FORGED } };
        const client = new WebSocket(`wss://[::1]:${String(port)}/ws`, tlsOptions);
        await new Promise<void>((resolve, reject) => client.once("open", resolve).once("error", reject));
        client.terminate();
      }
      assert.equal(heard.length, 2);
      assert.equal(heard[0]?.["x-coyote-forwarded-by"], SECRET);
      assert.equal(heard[1]?.["x-coyote-forwarded-by"], undefined);
      for (const headers of heard) assertNothingForged(headers);
    } finally {
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await box.routes([
        { host: PANEL, pathPrefix: "/", serviceId: "server", upstream: { kind: "address", address: panel.address }, hsts: true },
        { host: APP, pathPrefix: "/", serviceId: "app", upstream: { kind: "address", address: app.address } },
      ]);
      await proxy.reloadRoutes();
    }
  });

  /** Asks the panel until its upstream gets `expected` as the secret (the file is checked every few seconds). */
  const untilPanelGets = async (expected: string | undefined) => {
    let got: unknown;
    for (const end = Date.now() + SECRET_CHECK_INTERVAL_MS * 3; Date.now() < end; ) {
      got = (await get1From(PANEL, panel))["x-coyote-forwarded-by"];
      if (got === expected) return;
      await sleep(100);
    }
    assert.equal(got, expected, "the panel's upstream never got the expected secret");
  };

  it("picks up a changed secret; a missing or oversized file means no secret and a logged error", async () => {
    const changed = "c".repeat(43);
    await writeFile(secretFile, changed, { mode: 0o600 });
    await untilPanelGets(changed);

    await rm(secretFile);
    await untilPanelGets(undefined);
    const log = () => readFile(join(box.stateDir, "logs", "snitch-proxy.log"), "utf8");
    assert.match(await log(), /"reason":"[^"]*panel-forwarding-token does not exist".*without its forwarding secret/);

    await writeFile(secretFile, "x".repeat(4096), { mode: 0o600 });
    await sleep(SECRET_CHECK_INTERVAL_MS + 200);
    assert.equal((await get1From(PANEL, panel))["x-coyote-forwarded-by"], undefined);
    assert.match(await log(), /"reason":"[^"]*panel-forwarding-token: is larger than 1024 bytes \(4096\)"/);

    await writeFile(secretFile, SECRET, { mode: 0o600 });
    await untilPanelGets(SECRET);
  });
});
