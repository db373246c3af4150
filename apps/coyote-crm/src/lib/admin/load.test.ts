import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { InboxRequest, ServiceStatus, StateStore } from "@coyote/spec";
import { openDb, type CrmDb } from "../db.ts";
import { alarmAcks, statSamples } from "../schema.ts";
import { loadAlarmBoard, loadOverview, loadService, loadServiceDetail, loadServices } from "./load.ts";

const AUTHOR = { name: "test", email: "test@example.org" };
const FP = `sha256:${"ab".repeat(32)}`;
let dir: string;
let store: StateStore;
let db: CrmDb;

function service(id: string): Record<string, unknown> {
  return {
    schemaVersion: 1,
    kind: "Service",
    id,
    owner: { customerId: "c1", email: `owner@${id}.example.org` },
    domains: [{ name: `${id}.shop-one.net` }],
    web: { hostnames: [`${id}.shop-one.net`], backend: { kind: "upstream", address: "127.0.0.1:8080" } },
  };
}

function status(id: string, ready: "True" | "False"): ServiceStatus {
  return {
    schemaVersion: 1,
    id,
    observedGeneration: 1,
    updatedAt: "2026-11-23T01:00:00.000Z",
    conditions: [{ type: "Ready", status: ready, reason: ready === "True" ? "Converged" : "DnsFailed", message: "", observedGeneration: 1, lastTransitionTime: "2026-11-23T01:00:00.000Z" }],
  };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "coyote-admin-load-"));
  store = await StateStore.open(dir);
  db = openDb(join(dir, "crm", "crm.db"));
  await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", activated: true, buddies: [{ name: "north", address: "https://north.example.org", fingerprint: FP }] }, { author: AUTHOR });
  for (const id of ["alpha", "beta", "gamma"]) await store.applySpec(service(id), { author: AUTHOR });
  await store.writeJson("status/alpha.json", ServiceStatus, status("alpha", "True"));
  await store.writeJson("status/beta.json", ServiceStatus, status("beta", "False"));
  // A spec file edited by hand into something invalid: listed with its error, never hiding the others.
  await writeFile(store.path("specs/services/broken.json"), '{"schemaVersion":1,"kind":"Service","id":"broken","domains":[]}\n');
  const alarm = { schemaVersion: 1 as const, severity: "critical" as const, source: "minion", code: "CONVERGE_FAILED", message: "dns failed", serviceId: "beta" };
  await store.appendAlarm({ ...alarm, id: "alarm-0001", key: "minion/converge/beta", state: "raised", at: "2026-11-23T01:00:00.000Z" });
  await store.appendAlarm({ ...alarm, id: "alarm-0002", key: "minion/converge/alpha", state: "raised", at: "2026-11-23T01:01:00.000Z" });
  await store.appendAlarm({ ...alarm, id: "alarm-0003", key: "minion/converge/old", state: "raised", at: "2026-11-23T00:01:00.000Z" });
  await store.appendAlarm({ ...alarm, id: "alarm-0004", key: "minion/converge/old", state: "cleared", at: "2026-11-23T00:02:00.000Z" });
  db.insert(alarmAcks).values({ alarmId: "alarm-0002", key: "minion/converge/alpha", by: "ada@example.org", at: "2026-11-23T01:02:00.000Z" }).run();
  const request = { schemaVersion: 1 as const, receivedAt: "2026-11-23T01:00:00.000Z", from: { address: "https://north.example.org", fingerprint: FP }, request: "monitor" as const };
  await store.writeJson("inbox/req-00000001.json", InboxRequest, { ...request, id: "req-00000001" });
  await store.writeJson("inbox/req-00000002.json", InboxRequest, { ...request, id: "req-00000002", state: "accepted", decidedAt: "2026-11-23T01:05:00.000Z" });
});

after(async () => {
  db.$client.close();
  await rm(dir, { recursive: true, force: true });
});

test("loadServices lists every service with its readiness and the broken file with its error", async () => {
  const payload = await loadServices(store);
  assert.deepEqual(
    payload.services.map((s) => [s.id, s.ready.label, s.owner]),
    [
      ["alpha", "Ready", "owner@alpha.example.org"],
      ["beta", "Not ready", "owner@beta.example.org"],
      ["gamma", "Pending", "owner@gamma.example.org"],
    ],
  );
  assert.equal(payload.services[1]?.ready.reason, "DnsFailed");
  assert.equal(payload.invalid.length, 1);
  assert.equal(payload.invalid[0]?.id, "broken");
  assert.match(payload.invalid[0].error, /specs\/services\/broken\.json/);
});

test("loadService tells a missing, a broken and a good service apart", async () => {
  assert.equal((await loadService(store, "nope")).kind, "missing");
  assert.equal((await loadService(store, "../server")).kind, "missing");
  assert.equal((await loadService(store, "server")).kind, "missing");
  assert.equal((await loadService(store, "broken")).kind, "invalid");
  const ok = await loadService(store, "alpha");
  assert.equal(ok.kind, "ok");
});

test("loadServiceDetail carries the last hour's points, differences of the cumulative samples", async () => {
  const now = Date.parse("2026-11-23T02:00:00.000Z");
  const rows = [
    { at: now - 2 * 60 * 60 * 1000, requests: 0, bytesOut: 0 },
    { at: now - 20_000, requests: 10, bytesOut: 1000 },
    { at: now - 15_000, requests: 14, bytesOut: 1500 },
    { at: now - 10_000, requests: 20, bytesOut: 2500 },
  ];
  for (const r of rows) db.insert(statSamples).values({ ...r, serviceId: "alpha", bytesIn: 0, errors: 0, memoryBytes: null }).run();
  const detail = await loadServiceDetail(store, db, "alpha", now);
  assert.ok(detail);
  assert.deepEqual(
    detail.points.map((p) => p.requests),
    [4, 6],
  );
  assert.equal(detail.ready.state, "ready");
  assert.equal(await loadServiceDetail(store, db, "nope", now), undefined);
});

test("loadOverview counts services, unacknowledged alarms, pending requests and buddies", async () => {
  const overview = await loadOverview(store, db);
  assert.equal(overview.services, 3);
  assert.equal(overview.invalidServices, 1);
  assert.deepEqual([overview.ready, overview.notReady, overview.pending], [1, 1, 1]);
  assert.equal(overview.raisedAlarms, 1);
  assert.equal(overview.acknowledgedAlarms, 1);
  assert.equal(overview.pendingInbox, 1);
  assert.equal(overview.buddies, 1);
  assert.equal(overview.server.activated, true);
});

test("loadAlarmBoard joins the acknowledgements", async () => {
  const board = await loadAlarmBoard(store, db);
  assert.deepEqual(
    board.raised.map((a) => [a.key, a.ack?.by]),
    [
      ["minion/converge/alpha", "ada@example.org"],
      ["minion/converge/beta", undefined],
    ],
  );
  assert.deepEqual(
    board.cleared.map((a) => a.key),
    ["minion/converge/old"],
  );
});
