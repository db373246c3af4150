import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { test } from "node:test";
import { freePort, freePorts, freeUdpTcpPort } from "./index.ts";

const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });

test("freePort gives a port that can be listened on", async () => {
  const port = await freePort();
  assert.ok(port > 0 && port < 65536);
  assert.equal(await canListen(port), true);
});

test("freePorts gives different ports", async () => {
  const ports = await freePorts(8);
  assert.equal(new Set(ports).size, 8);
  for (const port of ports) assert.equal(await canListen(port), true);
});

test("freeUdpTcpPort gives a port free for both protocols", async () => {
  const port = await freeUdpTcpPort();
  assert.equal(await canListen(port), true);
  const udp = createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    udp.once("error", reject);
    udp.bind(port, "127.0.0.1", () => resolve());
  });
  await new Promise<void>((resolve) => udp.close(() => resolve()));
});
