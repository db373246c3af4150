import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { acmeChallengesPath, publishAcmeChallenge, waitForTxt, withdrawAcmeChallenge } from "./challenges.ts";
import { startDnsServer, type DnsServer } from "./server.ts";

describe("ACME DNS-01 challenges on the built-in server", () => {
  let stateDir: string;
  let logger: CoyoteLogger;
  let server: DnsServer;
  let address: string;

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "dns-acme-"));
    logger = createLogger({ component: "minion", file: join(stateDir, "log") });
    const zonesDir = join(stateDir, "dns", "zones");
    await mkdir(zonesDir, { recursive: true });
    const zone = (name: string) => ({ schemaVersion: 1, kind: "DnsZone", zone: name, owner: "svc", serial: 1, soa: { mname: "ns.box.test", rname: "hostmaster.box.test", refresh: 3600, retry: 600, expire: 604800, minimum: 300, ttl: 300 }, records: [{ name: name, ttl: 300, type: "NS", target: "ns.box.test" }] });
    await writeFile(join(zonesDir, "wild.test.json"), JSON.stringify(zone("wild.test")));
    await writeFile(join(zonesDir, "sub.wild.test.json"), JSON.stringify(zone("sub.wild.test")));
    server = await startDnsServer({ listen: ["127.0.0.1:0"], zonesDir, logger, challengesFile: acmeChallengesPath(stateDir) });
    address = `127.0.0.1:${String(server.addresses[0]?.port)}`;
  });

  after(async () => {
    await server.stop();
    await logger.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it("serves a published value within the zone that holds the name, and stops when it is withdrawn", async () => {
    await publishAcmeChallenge(stateDir, "wild.test", "value-one_AAAA");
    await publishAcmeChallenge(stateDir, "wild.test", "value-two_BBBB");
    await publishAcmeChallenge(stateDir, "sub.wild.test", "value-sub_CCCC");
    await waitForTxt(address, "_acme-challenge.wild.test", "value-one_AAAA", 5000);
    await waitForTxt(address, "_acme-challenge.wild.test", "value-two_BBBB", 5000);
    await waitForTxt(address, "_acme-challenge.sub.wild.test", "value-sub_CCCC", 5000);
    await withdrawAcmeChallenge(stateDir, "wild.test", "value-one_AAAA");
    // The server checks the file every 250 ms: after that, the value must be gone.
    await sleep(700);
    const gone = await waitForTxt(address, "_acme-challenge.wild.test", "value-one_AAAA", 300).then(() => false, () => true);
    assert.ok(gone, "a withdrawn value is no longer served");
    await waitForTxt(address, "_acme-challenge.wild.test", "value-two_BBBB", 2000);
    const file = JSON.parse(await readFile(acmeChallengesPath(stateDir), "utf8")) as { records: unknown[] };
    assert.equal(file.records.length, 2);
  });

  it("keeps serving the values it had while the file is damaged", async () => {
    await publishAcmeChallenge(stateDir, "wild.test", "kept_DDDD");
    await waitForTxt(address, "_acme-challenge.wild.test", "kept_DDDD", 5000);
    const file = acmeChallengesPath(stateDir);
    const good = await readFile(file, "utf8");
    await writeFile(file, JSON.stringify({ schemaVersion: 1, records: [{ name: "_acme-challenge.wild.test", value: "not base64url!" }] }));
    // Past two checks of the file: the damaged version has been read and refused.
    await sleep(700);
    await waitForTxt(address, "_acme-challenge.wild.test", "kept_DDDD", 300);
    await writeFile(file, good);
  });

  it("says which name and server when a value is not served in time", async () => {
    await assert.rejects(waitForTxt(address, "_acme-challenge.wild.test", "never-published", 300), /does not serve TXT never-published at _acme-challenge\.wild\.test/);
  });

  it("refuses a malformed value instead of publishing it", async () => {
    await assert.rejects(publishAcmeChallenge(stateDir, "wild.test", "bad value with spaces"), /base64url/);
  });
});
