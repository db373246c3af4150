// One client address cannot take the whole connection budget: past its cap a new connection is
// destroyed at once, and the cap comes from the options or, live, from proxy/routes.json.
import assert from "node:assert/strict";
import { connect as netConnect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { addressKey } from "./address-limit.ts";
import { startProxy, type RunningProxy } from "./proxy.ts";
import { sandbox, type Sandbox } from "./test/support.ts";

describe("addressKey", () => {
  it("counts IPv4 by address and IPv6 by /64", () => {
    assert.equal(addressKey("192.0.2.7"), "192.0.2.7");
    assert.equal(addressKey("::ffff:192.0.2.7"), "192.0.2.7");
    assert.equal(addressKey("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
    assert.equal(addressKey("2001:db8:1:2::7"), "2001:db8:1:2::/64");
    assert.equal(addressKey("2001:0db8:0001:0002:ffff::1"), "2001:db8:1:2::/64");
    assert.notEqual(addressKey("2001:db8:1:3::1"), addressKey("2001:db8:1:2::1"));
    assert.equal(addressKey("::1"), "0:0:0:0::/64");
    assert.equal(addressKey("fe80::1%eth0"), "fe80:0:0:0::/64");
    assert.equal(addressKey(undefined), "");
  });
});

/** Opens a plain TCP connection to the TLS port; resolves whether the proxy closed it within `ms`. */
function closedWithin(socket: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe("the per-address connection cap", () => {
  let box: Sandbox;
  let proxy: RunningProxy;
  let port: number;
  const open: Socket[] = [];
  const connect = async (to = port) => {
    const socket = netConnect(to, "127.0.0.1");
    socket.on("error", () => undefined);
    open.push(socket);
    await new Promise((resolve) => socket.once("connect", resolve));
    return socket;
  };

  before(async () => {
    box = await sandbox();
    await box.routes([]);
    proxy = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "127.0.0.1", port: 0 }, http: { host: "127.0.0.1", port: 0 }, accessLog: false, writeStats: false, maxConnectionsPerAddress: 3 });
    port = proxy.httpsAddress.port;
  });

  after(async () => {
    for (const socket of open) socket.destroy();
    await proxy.stop(200);
    await box.cleanup();
  });

  it("destroys a connection past the cap at once, and admits again once one closes", async () => {
    const held = [await connect(), await connect(), await connect()];
    const extra = await connect();
    assert.equal(await closedWithin(extra, 2000), true, "the fourth connection was destroyed");
    const plain = await connect(proxy.httpAddress?.port);
    assert.equal(await closedWithin(plain, 2000), true, "a plain HTTP connection counts against the same cap");
    const firstStays = closedWithin(held[0] as Socket, 300);
    assert.equal(await firstStays, false, "the admitted connections stay open");
    (held[1] as Socket).destroy();
    // The proxy hears the close a moment later; then a new connection is admitted.
    let admitted = false;
    for (let i = 0; i < 20 && !admitted; i++) {
      await sleep(50);
      const next = await connect();
      admitted = !(await closedWithin(next, 300));
      next.destroy();
    }
    assert.ok(admitted, "a connection was admitted again once one closed");
    for (const socket of held) socket.destroy();
  });

  it("takes the cap from proxy/routes.json when it carries one", async () => {
    await box.routes([], { maxConnections: 1000, maxConnectionsPerAddress: 1 });
    await proxy.reloadRoutes();
    await sleep(100);
    const first = await connect();
    const second = await connect();
    assert.equal(await closedWithin(second, 2000), true, "the second connection was destroyed");
    assert.equal(await closedWithin(first, 300), false, "the first stays open");
    first.destroy();
  });
});
