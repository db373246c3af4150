import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { ServerSpec, ServiceStatus, StateStore, validate } from "@coyote/spec";
import { openDb, type CrmDb } from "../db.ts";
import { ensureDefaultPlan } from "../plans.ts";
import { customerServices, statSamples, users } from "../schema.ts";
import { credentialsOf, customerServiceRows, isReady, ownedService, serviceLive, usageOf, type CustomerServiceRow } from "./services.ts";

const T0 = Date.parse("2026-11-20T12:00:00Z");

function status(ready: "True" | "False", observedGeneration = 1): ServiceStatus {
  const at = new Date(T0).toISOString();
  return {
    schemaVersion: 1,
    id: "alice-box-test",
    observedGeneration,
    updatedAt: at,
    conditions: [
      { type: "SpecValid", status: "True", reason: "Valid", message: "the spec is valid", observedGeneration, lastTransitionTime: at },
      { type: "Ready", status: ready, reason: ready === "True" ? "Converged" : "Pending", message: ready === "True" ? "every part matches" : "not converged: Web", observedGeneration, lastTransitionTime: at },
    ],
  };
}

describe("customer services", () => {
  let dir: string;
  let store: StateStore;
  let db: CrmDb;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "coyote-services-"));
    store = await StateStore.open(dir);
    db = openDb(join(dir, "crm", "crm.db"));
    ensureDefaultPlan(db);
    const createdAt = new Date(T0).toISOString();
    for (const [id, email] of [["u1", "alice@mail.example"], ["u2", "bob@mail.example"]] as const) db.insert(users).values({ id, email, passwordHash: "$scrypt$x$y", role: "customer", createdAt }).run();
    db.insert(customerServices).values({ serviceId: "alice-box-test", userId: "u1", planId: "starter", domain: "alice.box.test", mailAddress: "alice@alice.box.test", xmppAddress: "alice@alice.box.test", createdAt }).run();
    db.insert(customerServices).values({ serviceId: "bob-org", userId: "u2", planId: "gone", domain: "bob.org", mailAddress: null, xmppAddress: null, createdAt }).run();
    await store.applySpec({ schemaVersion: 1, kind: "Service", id: "alice-box-test", domains: [{ name: "alice.box.test", authoritative: false }] }, { author: { name: "t", email: "t@box.test" } });
  });

  afterEach(async () => {
    db.$client.close();
    await rm(dir, { recursive: true, force: true });
  });

  function row(id: string): CustomerServiceRow {
    const found = db.select().from(customerServices).all().find((r) => r.serviceId === id);
    if (found === undefined) throw new Error(`no row ${id}`);
    return found;
  }

  it("shows a customer only their own services", () => {
    assert.deepEqual(customerServiceRows(db, "u1").map((r) => r.serviceId), ["alice-box-test"]);
    assert.equal(ownedService(db, "u1", "alice-box-test")?.domain, "alice.box.test");
    assert.equal(ownedService(db, "u1", "bob-org"), undefined, "another customer's service");
    assert.equal(ownedService(db, "u1", "nothing"), undefined, "an unknown id");
  });

  it("is ready only when Ready is True for the current generation", () => {
    assert.equal(isReady(undefined, 1), false);
    assert.equal(isReady(status("False"), 1), false);
    assert.equal(isReady(status("True"), 1), true);
    assert.equal(isReady(status("True", 1), 2), false, "a Ready of an older spec");
    assert.equal(isReady(status("True", 3), undefined), true);
  });

  it("sums the last day's traffic and takes the last memory reading", () => {
    const sample = (at: number, requests: number, bytesOut: number, memoryBytes: number | null) =>
      db.insert(statSamples).values({ at, serviceId: "alice-box-test", requests, bytesIn: 0, bytesOut, errors: 0, memoryBytes }).run();
    sample(T0 - 30 * 3_600_000, 1, 100, null); // older than a day: left out
    sample(T0 - 3_600_000, 10, 1000, 5_000_000);
    sample(T0 - 1_800_000, 15, 1500, 6_000_000);
    sample(T0 - 60_000, 3, 200, null); // the proxy restarted: counts from zero
    assert.deepEqual(usageOf(db, "alice-box-test", T0), { windowHours: 24, requests: 5 + 3, bytesOut: 500 + 200, memoryBytes: 6_000_000 });
    assert.deepEqual(usageOf(db, "bob-org", T0), { windowHours: 24, requests: 0, bytesOut: 0, memoryBytes: null });
  });

  it("reads the minion's status into the live view", async () => {
    const before = await serviceLive(db, store, row("alice-box-test"), T0);
    assert.deepEqual(before, { id: "alice-box-test", domain: "alice.box.test", plan: { id: "starter", name: "Starter" }, ready: false, conditions: [], usage: { windowHours: 24, requests: 0, bytesOut: 0, memoryBytes: null } });
    await store.writeJson("status/alice-box-test.json", ServiceStatus, status("False"));
    const pending = await serviceLive(db, store, row("alice-box-test"), T0);
    assert.equal(pending.ready, false);
    assert.deepEqual(pending.conditions.map((c) => [c.type, c.status, c.message]), [["SpecValid", "True", "the spec is valid"], ["Ready", "False", "not converged: Web"]]);
    await store.writeJson("status/alice-box-test.json", ServiceStatus, status("True"));
    assert.equal((await serviceLive(db, store, row("alice-box-test"), T0)).ready, true);
    const orphan = await serviceLive(db, store, row("bob-org"), T0);
    assert.deepEqual(orphan.plan, { id: "gone", name: "gone" }, "a deleted plan shows its id");
  });

  it("tells the customer how to reach each part", () => {
    const server = validate(ServerSpec, { schemaVersion: 1, kind: "Server", name: "b", hostname: "coyote.box.test" }, "(test)");
    assert.deepEqual(credentialsOf(row("alice-box-test"), true, server), {
      websiteUrl: "https://alice.box.test:8443/",
      mail: { address: "alice@alice.box.test", server: "coyote.box.test" },
      xmpp: { address: "alice@alice.box.test", server: "coyote.box.test", port: 5222 },
    });
    const on443 = { ...server, ports: { ...server.ports, https: 443 } };
    assert.equal(credentialsOf(row("alice-box-test"), true, on443).websiteUrl, "https://alice.box.test/");
    assert.deepEqual(credentialsOf(row("bob-org"), false, on443), { websiteUrl: undefined, mail: undefined, xmpp: undefined });
  });
});
