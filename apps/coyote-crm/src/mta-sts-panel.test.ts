// The MTA-STS policy on the panel's listener for real: the crm's own server over a state folder,
// asked as snitch-proxy passes senders' fetches on. Needs the app built (`npm run build`).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { StateStore } from "@coyote/spec";
import { closeCrmDb } from "./lib/instance.ts";
import { startCrm, type RunningCrm } from "./server.ts";
import { requestAs } from "./test/panel.ts";

const AUTHOR = { name: "admin", email: "admin@box.net" };
const ACME = { mode: "acme", directoryUrl: "https://acme.example/directory", email: "ops@box.net" } as const;
const POLICY = "/.well-known/mta-sts.txt";
let dir = "";
let logger: CoyoteLogger;
let crm: RunningCrm;
let store: StateStore;

async function serverWith(fields: Record<string, unknown>): Promise<void> {
  await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "mx.host.net", activated: true, certificates: ACME, ...fields }, { author: AUTHOR });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "crm-mta-sts-"));
  store = await StateStore.open(dir, { author: AUTHOR });
  await serverWith({});
  await store.applySpec({ schemaVersion: 1, kind: "Service", id: "post", domains: [{ name: "post.example" }], mail: {} }, { author: AUTHOR });
  await store.applySpec({ schemaVersion: 1, kind: "Service", id: "web-only", domains: [{ name: "web-only.org" }], web: { hostnames: ["web-only.org"], backend: { kind: "static", root: "." } } }, { author: AUTHOR });
  logger = createLogger({ component: "coyote-crm", file: join(dir, "logs", "coyote-crm.log") });
  crm = await startCrm({ stateDir: dir, logger, port: 0, sampleIntervalMs: 60_000, scrypt: { logN: 10, r: 8, p: 1 }, secureCookies: false });
});
after(async () => {
  await crm.close();
  closeCrmDb();
  await logger.close();
  await rm(dir, { recursive: true, force: true });
});

describe("the MTA-STS policy on the panel's listener", () => {
  test("answers a hosted mail domain's policy: text/plain, exactly the policy, the mx the MX record names", async () => {
    for (const host of ["mta-sts.post.example", "mta-sts.post.example:8443"]) {
      const answer = await requestAs(crm.url, "GET", host, POLICY);
      assert.equal(answer.status, 200, `${host}: ${answer.body}`);
      assert.equal(answer.type, "text/plain; charset=utf-8");
      assert.equal(answer.body, "version: STSv1\r\nmode: enforce\r\nmx: mx.host.net\r\nmax_age: 604800\r\n");
    }
    const head = await requestAs(crm.url, "HEAD", "mta-sts.post.example", POLICY);
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
  });

  test("404 for a domain without mail here, and only the policy path of the policy host", async () => {
    const cases: Array<[string, string, string, number]> = [
      ["GET", "mta-sts.web-only.org", POLICY, 404],
      ["GET", "mta-sts.nobody.example", POLICY, 404],
      ["POST", "mta-sts.post.example", POLICY, 405],
      ["GET", "mta-sts.<x>.net", POLICY, 400],
      ["GET", "mta-sts.post.example", "/", 421],
      ["GET", "mta-sts.post.example", "/login", 421],
      ["GET", "mta-sts.post.example", "/admin", 421],
      ["GET", "mta-sts.post.example", `${POLICY}?x=1`, 421],
      ["GET", "mta-sts.post.example", `${POLICY}/../../admin`, 421],
      ["GET", "post.example", POLICY, 421],
      ["GET", "autoconfig.post.example", POLICY, 421],
    ];
    for (const [method, host, path, status] of cases) {
      const answer = await requestAs(crm.url, method, host, path);
      assert.equal(answer.status, status, `${method} ${host}${path}: ${answer.body}`);
      assert.ok(!answer.body.includes("<x>"), "nothing the client sent comes back");
      assert.doesNotMatch(answer.body, /<html|__next|STSv1/i, `${method} ${host}${path}: no panel page, no policy`);
    }
  });

  test("follows the server spec: a new hostname is the new mx; the local CA publishes no policy", async () => {
    await serverWith({ hostname: "mx2.host.net" });
    assert.match((await requestAs(crm.url, "GET", "mta-sts.post.example", POLICY)).body, /\r\nmx: mx2\.host\.net\r\n/);
    await serverWith({ certificates: { mode: "local-ca" } });
    const answer = await requestAs(crm.url, "GET", "mta-sts.post.example", POLICY);
    assert.equal(answer.status, 404, "senders enforcing it would refuse the local CA's certificate");
    assert.doesNotMatch(answer.body, /STSv1/);
    assert.equal((await requestAs(crm.url, "GET", "autoconfig.post.example", "/mail/config-v1.1.xml")).status, 200, "autoconfig is answered in both modes");
  });
});
