// The allowlist proxy, checked on loopback only: a target outside the allowlist is refused before
// any connection to it is made.
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { allowed, startAllowlistProxy, type AllowlistProxy } from "./proxy.ts";

/** Sends raw bytes to the proxy and returns what it answers until it closes (or 5 s pass). */
function ask(proxy: AllowlistProxy, text: string): Promise<string> {
  const { hostname, port } = new URL(proxy.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let answer = "";
    socket.setTimeout(5000, () => socket.destroy());
    socket.on("data", (chunk: Buffer) => (answer += chunk.toString()));
    socket.on("close", () => resolve(answer));
    socket.on("error", reject);
    socket.write(text);
  });
}

describe("the install phase's allowlist proxy", { timeout: 30_000 }, () => {
  let proxy: AllowlistProxy;
  let target: Server;
  let targetPort = 0;
  let connections = 0;
  const accepted = new Set<Socket>();

  before(async () => {
    proxy = await startAllowlistProxy("127.0.0.1");
    target = createServer((socket) => {
      connections++;
      accepted.add(socket);
      socket.end("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    });
    await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
    const address = target.address();
    targetPort = typeof address === "object" && address !== null ? address.port : 0;
  });

  after(async () => {
    await proxy.close();
    for (const socket of accepted) socket.destroy();
    await new Promise<void>((resolve) => target.close(() => resolve()));
  });

  it("allows Debian's archive and the npm registry on their ports only", () => {
    assert.equal(allowed("deb.debian.org", 80), true);
    assert.equal(allowed("DEB.debian.org", 443), true);
    assert.equal(allowed("registry.npmjs.org", 443), true);
    assert.equal(allowed("registry.npmjs.org", 80), false);
    assert.equal(allowed("deb.debian.org", 22), false);
    assert.equal(allowed("deb.debian.org.example.com", 80), false);
    assert.equal(allowed("security.debian.org", 80), false);
    assert.equal(allowed("127.0.0.1", 80), false);
  });

  it("refuses a tunnel to any other host before connecting to it", async () => {
    const answer = await ask(proxy, `CONNECT 127.0.0.1:${String(targetPort)} HTTP/1.1\r\nhost: 127.0.0.1:${String(targetPort)}\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 403 /);
    assert.equal(connections, 0);
    assert.deepEqual(proxy.records.at(-1), { method: "CONNECT", target: `127.0.0.1:${String(targetPort)}`, allowed: false });
  });

  it("refuses a plain request to any other host before connecting to it", async () => {
    const answer = await ask(proxy, `GET http://127.0.0.1:${String(targetPort)}/ HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 403 /);
    assert.equal(connections, 0);
  });

  it("refuses a request that is not in absolute form and a tunnel target with no port", async () => {
    assert.match(await ask(proxy, "GET / HTTP/1.1\r\nhost: deb.debian.org\r\nconnection: close\r\n\r\n"), /^HTTP\/1\.1 400 /);
    assert.match(await ask(proxy, "CONNECT deb.debian.org HTTP/1.1\r\nhost: deb.debian.org\r\n\r\n"), /^HTTP\/1\.1 403 /);
  });
});
