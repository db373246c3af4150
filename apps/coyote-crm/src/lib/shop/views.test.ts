import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SERVICE_READY_POLL_MS, SERVICE_SETUP_POLL_MS, SERVICE_SETUP_WATCH_MS, parseServiceList, parseServiceLive, servicePollMs, type ServiceLiveView } from "./views.ts";

const live: ServiceLiveView = {
  id: "a-test",
  domain: "a.test",
  plan: { id: "starter", name: "Starter" },
  ready: false,
  conditions: [{ type: "Ready", status: "False", reason: "Pending", message: "not converged: Web", lastTransitionTime: "2026-11-20T12:00:00.000Z" }],
  usage: { windowHours: 24, requests: 3, bytesOut: 10, memoryBytes: null },
};

describe("parseServiceLive", () => {
  it("accepts what the API answers", () => {
    assert.deepEqual(parseServiceLive(JSON.parse(JSON.stringify(live))), live);
    assert.deepEqual(parseServiceList({ services: [live, { ...live, id: "b-test", ready: true }] })?.map((s) => s.id), ["a-test", "b-test"]);
  });

  it("refuses anything else", () => {
    assert.equal(parseServiceLive({ error: { code: "NOT_FOUND", message: "no such service" } }), undefined);
    assert.equal(parseServiceLive({ ...live, ready: "yes" }), undefined);
    assert.equal(parseServiceLive({ ...live, conditions: [{ type: "Ready", status: "Maybe" }] }), undefined);
    assert.equal(parseServiceLive({ ...live, usage: { ...live.usage, memoryBytes: "1" } }), undefined);
    assert.equal(parseServiceLive(null), undefined);
    assert.equal(parseServiceList({ services: [live, 1] }), undefined);
    assert.equal(parseServiceList([live]), undefined);
  });
});

describe("servicePollMs", () => {
  it("looks again soon while a service is being set up, and rarely once every one is ready", () => {
    const setting = live;
    const ready = { ...live, ready: true };
    assert.ok(servicePollMs(setting) <= 500, "a customer watching a signup sees it ready within half a second of the box");
    assert.equal(servicePollMs(setting), SERVICE_SETUP_POLL_MS);
    assert.equal(servicePollMs(ready), SERVICE_READY_POLL_MS);
    assert.equal(servicePollMs([ready, setting]), SERVICE_SETUP_POLL_MS);
    assert.equal(servicePollMs([ready, ready]), SERVICE_READY_POLL_MS);
    assert.ok(servicePollMs(ready) > servicePollMs(setting), "a page with nothing changing asks less often");
    assert.equal(servicePollMs(setting, SERVICE_SETUP_WATCH_MS), SERVICE_READY_POLL_MS, "a setup still under way after a minute is not watched as closely");
  });
});
