// The admin panel for real: the built app behind its gate on a temp state folder, read as the
// admin would (pages and JSON API). Needs the app built (`npm run build`), like server.test.ts.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { InboxRequest, ServiceStatus, StateStore } from "@coyote/spec";
import { ServiceDetailPayload, ServicesPayload } from "../../lib/admin/live.ts";
import { closeCrmDb, crmDb } from "../../lib/instance.ts";
import { statSamples, users } from "../../lib/schema.ts";
import { createSession } from "../../lib/sessions.ts";
import { startCrm, type RunningCrm } from "../../server.ts";

const AUTHOR = { name: "test", email: "test@example.org" };
const FP = `sha256:${"ab".repeat(32)}`;
let dir = "";
let logger: CoyoteLogger;
let crm: RunningCrm;
let store: StateStore;
let cookie = "";

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "crm-admin-"));
  store = await StateStore.open(dir, { author: AUTHOR });
  await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", activated: true }, { author: AUTHOR });
  await store.applySpec(
    { schemaVersion: 1, kind: "Service", id: "alpha", owner: { customerId: "c1", email: "ann@example.org" }, plan: "starter", domains: [{ name: "alpha.shop-one.net" }], web: { hostnames: ["alpha.shop-one.net"], backend: { kind: "upstream", address: "127.0.0.1:8080" } } },
    { author: AUTHOR },
  );
  await writeFile(store.path("specs/services/broken.json"), '{"schemaVersion":1,"kind":"Service","id":"broken","domains":[]}\n');
  await store.writeJson("status/alpha.json", ServiceStatus, {
    schemaVersion: 1,
    id: "alpha",
    observedGeneration: 1,
    updatedAt: "2026-11-23T01:00:00.000Z",
    conditions: [{ type: "Ready", status: "False", reason: "DnsFailed", message: "the zone did not load", observedGeneration: 1, lastTransitionTime: "2026-11-23T01:00:00.000Z" }],
  });
  await store.appendAlarm({ schemaVersion: 1, id: "alarm-0001", key: "minion/converge/alpha", state: "raised", severity: "critical", source: "minion", code: "CONVERGE_FAILED", message: "dns failed", serviceId: "alpha", at: "2026-11-23T01:00:00.000Z" });
  await store.writeJson("inbox/req-00000001.json", InboxRequest, { schemaVersion: 1, id: "req-00000001", receivedAt: "2026-11-23T01:00:00.000Z", from: { name: "north", address: "https://north.example.org", fingerprint: FP }, request: "monitor" });
  logger = createLogger({ component: "coyote-crm", file: join(dir, "logs", "coyote-crm.log") });
  // A long sampling interval: the test's own samples are the only ones in the charts' window but one.
  crm = await startCrm({ stateDir: dir, logger, port: 0, sampleIntervalMs: 3_600_000 });
  const db = crmDb();
  db.insert(users).values({ id: "admin-1", email: "ada@example.org", passwordHash: "$scrypt$unused", role: "admin", createdAt: new Date().toISOString() }).run();
  cookie = `__Host-coyote-session=${createSession(db, "admin-1").token}`;
  const now = Date.now();
  // Cumulative counters: 10 then 17 then 30 requests, so the last hour saw 7 + 13 = 20.
  for (const [ago, requests, bytesOut] of [
    [30_000, 10, 1000],
    [20_000, 17, 1500],
    [10_000, 30, 4000],
  ] as const) {
    db.insert(statSamples).values({ at: now - ago, serviceId: "alpha", requests, bytesIn: 0, bytesOut, errors: 0, memoryBytes: null }).run();
  }
});

after(async () => {
  await crm.close();
  closeCrmDb();
  await logger.close();
  await rm(dir, { recursive: true, force: true });
});

async function page(path: string): Promise<{ status: number; html: string }> {
  const r = await fetch(new URL(path, crm.url), { redirect: "manual", headers: { cookie, accept: "text/html" } });
  // React separates adjacent text parts with empty comments; they are not part of the text.
  return { status: r.status, html: (await r.text()).replaceAll("<!-- -->", "") };
}

async function json(path: string): Promise<{ status: number; body: unknown }> {
  const r = await fetch(new URL(path, crm.url), { redirect: "manual", headers: { cookie, accept: "application/json" } });
  return { status: r.status, body: await r.json() };
}

function h1s(html: string): string[] {
  return [...html.matchAll(/<h1[^>]*>(.*?)<\/h1>/gs)].map((m) => (m[1] ?? "").replace(/<[^>]+>/g, ""));
}

describe("the admin panel", () => {
  test("every page answers with the sidebar and one h1 of its name", async () => {
    const pages: Array<[string, string]> = [
      ["/admin", "Overview"],
      ["/admin/services", "Services"],
      ["/admin/alarms", "Alarms"],
      ["/admin/buddies", "Buddies"],
      ["/admin/inbox", "Inbox"],
      ["/admin/plans", "Plans"],
      ["/admin/history", "History"],
      ["/admin/audit", "Audit log"],
      ["/admin/settings", "Settings"],
    ];
    for (const [path, heading] of pages) {
      const { status, html } = await page(path);
      assert.equal(status, 200, path);
      assert.deepEqual(h1s(html), [heading], path);
      assert.match(html, /<nav aria-label="Admin">/, path);
      for (const [href] of pages) assert.ok(html.includes(`href="${href}"`), `${path} links ${href}`);
    }
  });

  test("the overview counts and warns of a box without buddies", async () => {
    const { html } = await page("/admin");
    assert.match(html, /No buddy server watches this box/);
    assert.match(html, /1 raised/);
    assert.match(html, /1 pending request/);
    assert.match(html, /Signups are closed/);
  });

  test("the services list shows readiness with its reason and the broken spec with its error", async () => {
    const { html } = await page("/admin/services");
    assert.match(html, /Not ready/);
    assert.match(html, /DnsFailed/);
    assert.match(html, /ann@example\.org/);
    assert.match(html, /Invalid spec/);
    assert.match(html, /specs\/services\/broken\.json: domains: a service has at least one domain/);
    const api = await json("/api/admin/services");
    assert.equal(api.status, 200);
    const payload = ServicesPayload.parse(api.body);
    assert.deepEqual(
      payload.services.map((s) => [s.id, s.ready.state, s.ready.reason]),
      [["alpha", "not-ready", "DnsFailed"]],
    );
    assert.deepEqual(
      payload.invalid.map((s) => s.id),
      ["broken"],
    );
  });

  test("a service's page has its conditions, traffic summary, memory note and spec; its API has the points", async () => {
    const { status, html } = await page("/admin/services/alpha");
    assert.equal(status, 200);
    assert.deepEqual(h1s(html), ["alpha"]);
    assert.match(html, /the zone did not load/);
    assert.match(html, /<h2>Traffic<\/h2>/);
    assert.match(html, /<h2>Memory<\/h2>/);
    assert.match(html, /20 requests in the last hour/);
    assert.match(html, /no memory readings: this service has no sleeping backend/);
    assert.match(html, /<svg class="chart"/);
    assert.match(html, /&quot;alpha\.shop-one\.net&quot;/);
    assert.match(html, /href="\/admin\/history\?service=alpha"/);
    const api = await json("/api/admin/services/alpha");
    const detail = ServiceDetailPayload.parse(api.body);
    assert.equal(
      detail.points.reduce((sum, p) => sum + p.requests, 0),
      20,
    );
    assert.equal(detail.conditions[0]?.reason, "DnsFailed");
  });

  test("unknown services and revisions are 404, as pages and as JSON", async () => {
    assert.equal((await page("/admin/services/nope")).status, 404);
    assert.equal((await page("/admin/history/zzz")).status, 404);
    assert.equal((await page("/admin/history/0000000")).status, 404);
    const api = await json("/api/admin/services/nope");
    assert.equal(api.status, 404);
    assert.deepEqual(api.body, { error: { code: "NOT_FOUND", message: 'no service with id "nope"' } });
  });

  test("a revision's page shows its diff, coloured, and the rollback button", async () => {
    const [head] = await store.history(undefined, 1);
    assert.ok(head);
    const { status, html } = await page(`/admin/history/${head.revision}`);
    assert.equal(status, 200);
    assert.match(html, /class="diff-add"/);
    assert.match(html, /Roll back to this revision/);
    const list = await page("/admin/history");
    assert.ok(list.html.includes(`href="/admin/history/${head.revision}"`));
  });

  test("buddies show that nothing is known while coyote-listener does not run", async () => {
    await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", activated: true, buddies: [{ name: "north", address: "https://north.example.org", fingerprint: FP }] }, { author: AUTHOR });
    const { html } = await page("/admin/buddies");
    assert.match(html, /no heartbeat data: coyote-listener is not running/);
    assert.doesNotMatch(html, /No buddy server watches this box/);
  });

  test("the alarms and audit APIs answer JSON", async () => {
    const alarms = await json("/api/admin/alarms");
    assert.equal(alarms.status, 200);
    assert.equal((alarms.body as { raised: unknown[] }).raised.length, 1);
    const audit = await json("/api/admin/audit");
    assert.equal(audit.status, 200);
    assert.ok(Array.isArray((audit.body as { entries: unknown }).entries));
  });
});
