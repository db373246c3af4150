import assert from "node:assert/strict";
import { test } from "node:test";
import type { ServiceSpec, ServiceStatus } from "@coyote/spec";
import { CHART_WINDOW_MS, readiness, serviceDetail, ServiceDetailPayload, serviceRow, ServicesPayload } from "./live.ts";

const spec: ServiceSpec = {
  schemaVersion: 1,
  kind: "Service",
  id: "blog",
  generation: 3,
  owner: { customerId: "c1", email: "ann@example.org" },
  plan: "starter",
  domains: [
    { name: "blog.example.org", authoritative: true, records: [] },
    { name: "blog.example.net", authoritative: false, records: [] },
  ],
};

function status(conditions: Array<{ type: string; status: "True" | "False" | "Unknown"; reason: string; message: string }>): ServiceStatus {
  return {
    schemaVersion: 1,
    id: "blog",
    observedGeneration: 2,
    updatedAt: "2026-11-23T01:00:00.000Z",
    conditions: conditions.map((c) => ({ ...c, observedGeneration: 2, lastTransitionTime: "2026-11-23T00:59:00.000Z" })),
  };
}

test("readiness is pending without a status or without a Ready condition", () => {
  assert.equal(readiness(undefined).state, "pending");
  assert.equal(readiness(undefined).label, "Pending");
  assert.equal(readiness(status([{ type: "DnsReady", status: "True", reason: "Served", message: "ok" }])).state, "pending");
});

test("readiness follows the Ready condition and carries its reason", () => {
  const ready = readiness(status([{ type: "Ready", status: "True", reason: "Converged", message: "all parts up" }]));
  assert.deepEqual([ready.state, ready.label], ["ready", "Ready"]);
  const notReady = readiness(status([{ type: "Ready", status: "False", reason: "CertificatePending", message: "waiting for the ACME order" }]));
  assert.deepEqual([notReady.state, notReady.label, notReady.reason, notReady.message], ["not-ready", "Not ready", "CertificatePending", "waiting for the ACME order"]);
  assert.equal(readiness(status([{ type: "Ready", status: "Unknown", reason: "Reconciling", message: "" }])).state, "not-ready");
});

test("serviceRow lists domains, owner, plan and conditions, and fits the API schema", () => {
  const row = serviceRow(spec, status([{ type: "Ready", status: "False", reason: "Failed", message: "boom" }]));
  assert.deepEqual(row.domains, ["blog.example.org", "blog.example.net"]);
  assert.equal(row.owner, "ann@example.org");
  assert.equal(row.plan, "starter");
  assert.equal(row.conditions.length, 1);
  assert.equal(row.conditions[0]?.reason, "Failed");
  const payload = ServicesPayload.parse(JSON.parse(JSON.stringify({ services: [row], invalid: [{ id: "bad", error: "specs/services/bad.json: id: wrong" }] })));
  assert.equal(payload.services[0]?.ready.state, "not-ready");
});

test("serviceDetail spans the last hour and keeps generations apart", () => {
  const now = Date.parse("2026-11-23T02:00:00.000Z");
  const detail = serviceDetail(spec, status([{ type: "Ready", status: "True", reason: "Converged", message: "" }]), [{ at: now - 5000, requests: 4, bytesOut: 100, errors: 0, memoryBytes: null }], now);
  assert.equal(detail.to - detail.from, CHART_WINDOW_MS);
  assert.equal(detail.generation, 3);
  assert.equal(detail.observedGeneration, 2);
  assert.equal(ServiceDetailPayload.parse(JSON.parse(JSON.stringify(detail))).points.length, 1);
  assert.equal(serviceDetail(spec, undefined, [], now).observedGeneration, undefined);
});
