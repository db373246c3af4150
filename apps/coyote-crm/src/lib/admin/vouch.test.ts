import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { StateStore } from "@coyote/spec";
import { readAudit } from "../audit.ts";
import { openDb, type CrmDb } from "../db.ts";
import { ownershipOf } from "../shop/ownership.ts";
import { vouchForDomain } from "./vouch.ts";

const AUTHOR = { name: "shop", email: "shop@box.net" };
const TOKEN = "tok_0123456789abcdefghijkl";
const server = { hostname: "coyote.host.net", customerDomain: "box.net" };
const condition = (status: "True" | "False", message: string) => ({ type: "DomainVerified", status, reason: status === "True" ? "Converged" : "DomainUnverified", message, lastTransitionTime: "2026-01-01T00:00:00.000Z" });

describe("vouching for a customer's domain", () => {
  let dir: string;
  let store: StateStore;
  let db: CrmDb;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "coyote-vouch-"));
    store = await StateStore.open(dir);
    db = openDb(join(dir, "crm", "crm.db"));
    await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: server.hostname, customerDomain: server.customerDomain }, { author: AUTHOR });
    await store.applySpec({ schemaVersion: 1, kind: "Service", id: "bob", owner: { customerId: "u-bob", email: "bob@mail.net" }, domains: [{ name: "bob.org", challenge: TOKEN }] }, { author: AUTHOR });
  });
  afterEach(async () => {
    db.$client.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("records who vouched and when in the spec and in the audit log, once", async () => {
    const at = new Date("2026-03-04T05:06:07.000Z");
    assert.deepEqual(await vouchForDomain({ db, store }, "ada@box.net", "bob", "bob.org", at), { ok: true });
    const spec = await store.getSpec("bob");
    assert.ok(spec?.kind === "Service");
    assert.deepEqual(spec.domains[0]?.vouched, { by: "ada@box.net", at: at.toISOString() });
    const entry = readAudit(db)[0];
    assert.deepEqual([entry?.actor, entry?.action, entry?.target, entry?.detail], ["ada@box.net", "domain.vouch", "bob", JSON.stringify({ domain: "bob.org" })]);
    assert.deepEqual(await vouchForDomain({ db, store }, "eve@box.net", "bob", "bob.org"), { ok: false, message: "bob.org was already vouched for by ada@box.net" });
    assert.equal(readAudit(db).length, 1);
  });

  it("refuses a domain the service does not have and a missing service, and records nothing", async () => {
    assert.deepEqual(await vouchForDomain({ db, store }, "ada@box.net", "bob", "eve.org"), { ok: false, message: "vouching for eve.org: it is not a domain of bob" });
    assert.deepEqual(await vouchForDomain({ db, store }, "ada@box.net", "nope", "bob.org"), { ok: false, message: "vouching for bob.org: there is no valid service nope" });
    assert.equal(readAudit(db).length, 0);
  });

  it("the customer's page shows the TXT record to set until the proof is seen, then that it was", async () => {
    const spec = await store.getSpec("bob");
    const waiting = ownershipOf(spec, server, [condition("False", "bob.org is not proven yet: ... (last look: no such record)")]);
    assert.deepEqual(waiting, [{ domain: "bob.org", txt: { name: "_coyote-challenge.bob.org", value: `coyote-domain-proof=${TOKEN}` }, nameServer: "coyote.host.net", state: "waiting", lastLook: "bob.org is not proven yet: ... (last look: no such record)" }]);
    assert.equal(ownershipOf(spec, server, [condition("True", "matches the spec")])[0]?.state, "seen");
    assert.equal(ownershipOf(spec, server, [])[0]?.state, "waiting", "no condition yet: not seen");
    await vouchForDomain({ db, store }, "ada@box.net", "bob", "bob.org");
    assert.equal(ownershipOf(await store.getSpec("bob"), server, [])[0]?.state, "seen", "vouched");
  });
});
