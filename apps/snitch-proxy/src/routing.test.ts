import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validate, ProxyRoutes } from "@coyote/spec";
import { normalize } from "./certs.ts";
import { clientResponseHeaders, requestHost, upstreamRequestHeaders } from "./headers.ts";
import { RouteTable } from "./routes.ts";
import { parseHostPort } from "./upstreams.ts";

const table = new RouteTable(validate(ProxyRoutes, {
  schemaVersion: 1,
  generatedAt: "2026-11-22T00:00:00Z",
  routes: [
    { host: "a.test", pathPrefix: "/", serviceId: "root", upstream: { kind: "address", address: "127.0.0.1:1" } },
    { host: "a.test", pathPrefix: "/app", serviceId: "app", upstream: { kind: "address", address: "127.0.0.1:2" } },
    { host: "a.test", pathPrefix: "/app/admin/", serviceId: "admin", upstream: { kind: "address", address: "127.0.0.1:3" } },
    { host: "*.w.test", pathPrefix: "/", serviceId: "wild", upstream: { kind: "address", address: "127.0.0.1:4" } },
    { host: "exact.w.test", pathPrefix: "/", serviceId: "exact", upstream: { kind: "address", address: "127.0.0.1:5" } },
  ],
}, "routes"));

describe("routing", () => {
  it("matches the longest path prefix on a segment boundary", () => {
    const service = (path: string) => table.match("a.test", path)?.serviceId;
    assert.equal(service("/"), "root");
    assert.equal(service("/app"), "app");
    assert.equal(service("/app/x"), "app");
    assert.equal(service("/app?x=1"), "app");
    assert.equal(service("/apple"), "root");
    assert.equal(service("/app/admin/users"), "admin");
    assert.equal(service("/app/admin"), "app");
    assert.equal(table.match("b.test", "/"), undefined);
  });

  it("routes names under a wildcard to it, one label deep, and prefers an exact route", () => {
    assert.equal(table.match("any.w.test", "/")?.serviceId, "wild");
    assert.equal(table.match("exact.w.test", "/")?.serviceId, "exact");
    assert.equal(table.match("w.test", "/"), undefined);
    assert.equal(table.match("a.b.w.test", "/"), undefined);
  });

  it("reads the host from Host or :authority, and refuses malformed ones", () => {
    assert.equal(requestHost({ host: "Example.TEST:8443" }), "example.test");
    assert.equal(requestHost({ host: "example.test." }), "example.test");
    assert.equal(requestHost({ ":authority": "h2.test" }), "h2.test");
    for (const bad of ["", "a b", "[::1]:443", "x.test:abc", "x.test:123456", "-x.test", "x..test", "x_y.test", "a".repeat(300)]) {
      assert.equal(requestHost({ host: bad }), undefined, JSON.stringify(bad));
    }
    assert.equal(requestHost({}), undefined);
  });

  it("never turns a crafted SNI name into a path", () => {
    assert.equal(normalize("../../etc/passwd"), undefined);
    assert.equal(normalize("*.test"), undefined);
    assert.equal(normalize("A.Test."), "a.test");
  });

  it("builds upstream headers without hop-by-hop ones and with the forwarding headers", () => {
    const out = upstreamRequestHeaders(
      { host: "a.test", connection: "keep-alive, x-secret", "x-secret": "1", "keep-alive": "timeout=5", upgrade: "h2c", te: "trailers", "x-forwarded-for": "10.0.0.1", accept: "*/*" },
      { host: "a.test", clientAddress: "192.0.2.9", proto: "https", requestId: "abcdefgh12345678" },
    );
    assert.deepEqual(out, { accept: "*/*", host: "a.test", "x-forwarded-for": "192.0.2.9", "x-forwarded-proto": "https", "x-forwarded-host": "a.test", "x-request-id": "abcdefgh12345678" });
    const upgrade = upstreamRequestHeaders({ host: "a.test", connection: "Upgrade", upgrade: "websocket" }, { host: "a.test", clientAddress: "::1", proto: "https", requestId: "abcdefgh12345678" }, true);
    assert.equal(upgrade.connection, "upgrade");
    assert.equal(upgrade.upgrade, "websocket");
    assert.deepEqual(clientResponseHeaders({ "transfer-encoding": "chunked", connection: "close", "set-cookie": ["a=1", "b=2"] }, "abcdefgh12345678"), { "set-cookie": ["a=1", "b=2"], "x-request-id": "abcdefgh12345678" });
  });

  it("drops every forwarding header a client sends, and adds the panel's secret only when given", () => {
    const claimed = {
      host: "a.test",
      "x-coyote-forwarded-by": "guess",
      "x-coyote-client-ip": "203.0.113.1",
      "x-forwarded-for": "203.0.113.2",
      "x-forwarded-proto": "http",
      "x-forwarded-host": "evil.test",
      "x-forwarded-port": "80",
      forwarded: "for=203.0.113.3",
      "x-real-ip": "203.0.113.4",
      "x-client-ip": "203.0.113.5",
      "x-other": "kept",
    };
    const info = { host: "a.test", clientAddress: "192.0.2.9", proto: "https", requestId: "abcdefgh12345678" };
    const plain = upstreamRequestHeaders(claimed, info);
    assert.deepEqual(plain, { host: "a.test", "x-other": "kept", "x-forwarded-for": "192.0.2.9", "x-forwarded-proto": "https", "x-forwarded-host": "a.test", "x-request-id": "abcdefgh12345678" });
    const panel = upstreamRequestHeaders(claimed, { ...info, forwardedBy: "the-secret" }, true);
    assert.equal(panel["x-coyote-forwarded-by"], "the-secret");
    assert.equal(panel["x-forwarded-for"], "192.0.2.9");
    assert.equal(panel["x-coyote-client-ip"], undefined);
    // A browser's Origin names the port: X-Forwarded-Host, which the panel trusts, does too.
    const withPort = upstreamRequestHeaders({ host: "a.test:8443" }, info);
    assert.equal(withPort["x-forwarded-host"], "a.test:8443");
    assert.equal(upstreamRequestHeaders({ ":authority": "a.test:8443" }, info)["x-forwarded-host"], "a.test:8443");
  });

  it("splits addresses, IPv6 included", () => {
    assert.deepEqual(parseHostPort("127.0.0.1:8080"), { host: "127.0.0.1", port: 8080 });
    assert.deepEqual(parseHostPort("[::1]:8443"), { host: "::1", port: 8443 });
  });
});
