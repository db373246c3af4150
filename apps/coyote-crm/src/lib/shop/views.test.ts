import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseServiceList, parseServiceLive, type ServiceLiveView } from "./views.ts";

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
