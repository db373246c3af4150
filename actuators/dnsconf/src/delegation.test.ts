import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { decode, encode } from "dns-packet";
import { createLogger } from "@coyote/log";
import { queryDelegation } from "./delegation.ts";
import { startDnsServer } from "./server.ts";

test("queryDelegation reads the parent zone's referral, and only from the server asked with the id it sent", { timeout: 20_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "coyote-delegation-"));
  const logger = createLogger({ component: "test-dns", file: join(dir, "dns.log") });
  const soa = { mname: "ns.parent.net", rname: "hostmaster.parent.net", refresh: 3600, retry: 900, expire: 1209600, minimum: 60, ttl: 60 };
  const records = [
    { name: "parent.net", ttl: 60, type: "NS", target: "ns.parent.net" },
    { name: "carol.parent.net", ttl: 60, type: "NS", target: "box.host.net" },
    { name: "carol.parent.net", ttl: 60, type: "NS", target: "ns2.host.net" },
  ];
  await writeFile(join(dir, "parent.net.json"), JSON.stringify({ schemaVersion: 1, kind: "DnsZone", zone: "parent.net", owner: "t", serial: 1, soa, records }));
  const server = await startDnsServer({ listen: ["127.0.0.1:0"], zonesDir: dir, logger });
  // A server that answers every query twice: first with a forged id naming another server, then truly.
  const forger = createSocket("udp4");
  forger.on("message", (message, remote) => {
    const query = decode(message);
    const answer = (id: number, target: string) => encode({ type: "response", id, flags: 0, questions: query.questions ?? [], authorities: [{ type: "NS", name: "dave.parent.net", ttl: 60, data: target }] });
    forger.send(answer(((query.id ?? 0) + 1) % 65536, "evil.example.net"), remote.port, remote.address);
    forger.send(answer(query.id ?? 0, "box.host.net"), remote.port, remote.address);
  });
  await new Promise<void>((resolve) => forger.bind(0, "127.0.0.1", resolve));
  try {
    const port = server.addresses[0]?.port ?? 0;
    assert.deepEqual(await queryDelegation({ host: "127.0.0.1", port }, "carol.parent.net"), { names: ["box.host.net", "ns2.host.net"] });
    assert.deepEqual(await queryDelegation({ host: "127.0.0.1", port }, "nobody.parent.net"), { names: [] });
    assert.match(JSON.stringify(await queryDelegation({ host: "127.0.0.1", port }, "carol.other.net")), /response code 5/, "a refusal is an error");
    assert.deepEqual(await queryDelegation({ host: "127.0.0.1", port: forger.address().port }, "dave.parent.net"), { names: ["box.host.net"] }, "the forged answer is ignored");
    const silent = createSocket("udp4");
    await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", resolve));
    const started = Date.now();
    assert.match(JSON.stringify(await queryDelegation({ host: "127.0.0.1", port: silent.address().port }, "carol.parent.net", 300)), /no answer .* within 300 ms/);
    assert.ok(Date.now() - started < 1500);
    silent.close();
    assert.deepEqual(await queryDelegation({ host: "box.host.net", port }, "carol.parent.net"), { error: "not an IP address: box.host.net" });
  } finally {
    forger.close();
    await server.stop();
    await logger.close();
    await rm(dir, { recursive: true, force: true });
  }
});
