import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { hashPassword } from "@coyote/actuator-mailconf";
import { scramSha1Credentials } from "@coyote/actuator-xmppconf";
import { createLogger, logFileFor } from "@coyote/log";
import { daemonTempDir, freeUdpPort } from "@coyote/testing";
import { StateStore } from "@coyote/spec";
import { bundledActuators, groupId } from "./bundled.ts";
import { Minion } from "./minion.ts";
import { cleanedUpAfterTests } from "./test/support.ts";

const run = promisify(execFile);
const AUTHOR = { name: "Test", email: "test@example.org" };
const { dirs, minions } = cleanedUpAfterTests();

async function dig(port: number, name: string, type: string): Promise<string[]> {
  const { stdout } = await run("kdig", ["@127.0.0.1", "-p", String(port), "+timeout=2", "+retry=0", "+short", name, type]);
  return stdout.trim().split("\n").filter(Boolean).sort();
}

test("the bundled actuators turn one applied spec into mail, XMPP and DNS, with the DKIM key and SRV records served, and say that no daemon serves mail or XMPP yet", { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = await daemonTempDir("coyote-bundled-");
  t.after(cleanup);
  const stateDir = join(dir, "state");
  const port = await freeUdpPort();
  const store = await StateStore.open(stateDir, { author: AUTHOR });
  await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", publicIPv4: "192.0.2.7", dns: { listen: [`127.0.0.1:${port}`] } }, { author: AUTHOR });
  await store.applySpec({
    schemaVersion: 1,
    kind: "Service",
    id: "shop",
    domains: [{ name: "shop.example", records: [{ type: "CNAME", name: "www", target: "shop.example" }] }],
    mail: { mailboxes: [{ address: "anna@shop.example", passwordHash: await hashPassword("correct horse") }] },
    xmpp: { users: [{ username: "anna", domain: "shop.example", passwordHash: scramSha1Credentials("correct horse") }] },
    web: { hostnames: ["shop.example"], backend: { kind: "upstream", address: "127.0.0.1:9" } },
  }, { author: AUTHOR });

  const logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion") });
  const minion = new Minion({ stateDir, logger, actuators: (server) => bundledActuators(server, stateDir), debounceMs: 10 });
  minions.push(minion);
  await minion.start();
  const deadline = Date.now() + 30_000;
  const condition = (type: string) => minion.statuses.get("shop")?.conditions.find((c) => c.type === type);
  while (condition("DnsReady")?.status !== "True" || condition("MailReady")?.status !== "False" || condition("XmppReady")?.status !== "False") {
    if (Date.now() > deadline) assert.fail(`not as expected: ${JSON.stringify(minion.statuses.get("shop")?.conditions)}`);
    await sleep(20);
  }
  assert.deepEqual(minion.statuses.get("shop")?.conditions.map((c) => c.type), ["SpecValid", "MailReady", "XmppReady", "DnsReady", "WebReady", "Ready"]);
  // No daemon runs in this test: mail and XMPP are configured, and their conditions say that
  // nothing serves them yet, naming the daemon (the box serving them is integration/src/mail-box.test.ts).
  assert.match(condition("MailReady")?.message ?? "", /postfix/i, JSON.stringify(condition("MailReady")));
  assert.match(condition("XmppReady")?.message ?? "", /prosody/i, JSON.stringify(condition("XmppReady")));
  assert.equal(condition("Ready")?.status, "False");

  assert.deepEqual(await dig(port, "shop.example", "A"), ["192.0.2.7"]);
  assert.deepEqual(await dig(port, "shop.example", "MX"), ["10 box.example.org."]);
  assert.deepEqual(await dig(port, "www.shop.example", "CNAME"), ["shop.example."]);
  const dkim = (await dig(port, "coyote._domainkey.shop.example", "TXT")).join("").replace(/" "|"/g, "");
  assert.match(dkim, /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$/, "the DKIM key mailconf made, published by dnsconf in the same pass");
  assert.deepEqual(await dig(port, "_xmpp-client._tcp.shop.example", "SRV"), ["0 5 5222 box.example.org."]);
  assert.ok((await dig(port, "shop.example", "TXT")).some((t) => t.includes("v=spf1 mx -all")));
  await minion.stop();
  await logger.close();
});

test("finds a system group's id by name, and none for a name that is not there", () => {
  const dir = mkdtempSync(join(tmpdir(), "coyote-groups-"));
  dirs.push(dir);
  const file = join(dir, "group");
  writeFileSync(file, "root:x:0:\ndovecot:x:117:\nbroken:x:notanumber:\n");
  assert.equal(groupId("dovecot", file), 117);
  assert.equal(groupId("root", file), 0);
  assert.equal(groupId("broken", file), undefined);
  assert.equal(groupId("dove", file), undefined);
  assert.equal(groupId("dovecot", join(dir, "missing")), undefined);
});
