import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { adminExists, advanceTo, normaliseToken, reachedStep, stepOpen, tokenMatches } from "./activation.ts";
import { audit, readAudit } from "./audit.ts";
import { openDb } from "./db.ts";
import { activePlans, DEFAULT_MAX_ALIASES, DEFAULT_MAX_MAILBOXES, ensureDefaultPlan, PlanInput, priceText, savePlan } from "./plans.ts";
import { users } from "./schema.ts";
import { createSession, deleteSession, findSession, SESSION_TTL_MS } from "./sessions.ts";
import { sandboxes, type Sandbox } from "../test/support.ts";

const box = sandboxes();

function addUser(b: Sandbox, role: "admin" | "customer", email = `${role}@example.org`): string {
  const id = `${role}-${email}`;
  b.db.insert(users).values({ id, email, passwordHash: "$scrypt$x", role, createdAt: new Date().toISOString() }).run();
  return id;
}

describe("the crm database", () => {
  test("opens in a private folder, migrates once, and opening again keeps the data", async () => {
    const b = await box();
    addUser(b, "admin");
    assert.equal(statSync(join(b.dir, "crm")).mode & 0o777, 0o700);
    const again = openDb(join(b.dir, "crm", "crm.db"));
    assert.equal(again.$client.pragma("user_version", { simple: true }), 3);
    assert.equal(again.select().from(users).all().length, 1);
    again.$client.close();
  });

  test("sessions: only a hash is stored; an unknown, malformed or ended token opens nothing; sign-out ends it", async () => {
    const b = await box();
    const id = addUser(b, "customer");
    const now = Date.parse("2026-11-23T00:00:00Z");
    const { token } = createSession(b.db, id, now);
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(!JSON.stringify(b.db.$client.prepare("select * from sessions").all()).includes(token), "the token itself is not stored");
    assert.deepEqual(findSession(b.db, token, now + 1000), { id, email: "customer@example.org", role: "customer" });
    assert.equal(findSession(b.db, token, now + SESSION_TTL_MS), undefined, "ended");
    // The last character changed for certain (a fixed "A" would be the token itself when it ends in A).
    assert.equal(findSession(b.db, `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`, now), undefined);
    assert.equal(findSession(b.db, "short", now), undefined);
    assert.equal(findSession(b.db, undefined, now), undefined);
    deleteSession(b.db, token);
    assert.equal(findSession(b.db, token, now + 1000), undefined);
  });

  test("deleting a user ends their sessions", async () => {
    const b = await box();
    const id = addUser(b, "customer");
    const { token } = createSession(b.db, id);
    b.db.delete(users).where(eq(users.id, id)).run();
    assert.equal(findSession(b.db, token), undefined);
  });

  test("the audit log keeps every entry, newest first", async () => {
    const b = await box();
    audit(b.db, "admin@example.org", "add buddy", "west", { address: "https://west.example" });
    audit(b.db, "admin@example.org", "open signups", "server");
    const entries = readAudit(b.db);
    assert.deepEqual(entries.map((e) => e.action), ["open signups", "add buddy"]);
    assert.deepEqual(JSON.parse(entries[1]?.detail ?? "{}"), { address: "https://west.example" });
  });

  test("plans: validated input, saved and replaced, a default plan only on an empty shop", async () => {
    const b = await box();
    ensureDefaultPlan(b.db);
    ensureDefaultPlan(b.db);
    assert.deepEqual(activePlans(b.db).map((p) => p.id), ["starter"]);
    const bad = PlanInput.safeParse({ id: "Bad Id", name: "", description: "", price: "4,50" });
    assert.equal(bad.success, false);
    assert.deepEqual(new Set(bad.error.issues.map((i) => i.path[0])), new Set(["id", "name", "price", "web"]));
    const input = PlanInput.parse({ id: "pro", name: "Pro", description: "more", price: "4.50", web: "on", active: "on", sortOrder: "1" });
    assert.equal(savePlan(b.db, input).priceCents, 450);
    savePlan(b.db, { ...input, active: undefined });
    assert.deepEqual(activePlans(b.db).map((p) => p.id), ["starter"]);
    assert.equal(priceText(450), "4.50 / month");
    assert.equal(priceText(0), "free");
  });

  test("plans: mailbox and alias limits default, and a bad limit is refused by name", async () => {
    const b = await box();
    ensureDefaultPlan(b.db);
    assert.deepEqual(activePlans(b.db).map((p) => [p.maxMailboxes, p.maxAliases]), [[DEFAULT_MAX_MAILBOXES, DEFAULT_MAX_ALIASES]]);
    const base = { id: "pro", name: "Pro", description: "", price: "4", mail: "on" };
    const parsed = PlanInput.parse({ ...base, maxMailboxes: " 20 ", maxAliases: "0" });
    assert.deepEqual([parsed.maxMailboxes, parsed.maxAliases], [20, 0]);
    assert.deepEqual([savePlan(b.db, parsed).maxMailboxes, savePlan(b.db, parsed).maxAliases], [20, 0]);
    for (const [field, value] of [["maxMailboxes", "0"], ["maxMailboxes", "1001"], ["maxMailboxes", "2.5"], ["maxMailboxes", ""], ["maxAliases", "-1"], ["maxAliases", "1e3"], ["maxAliases", "99999"]] as const) {
      const bad = PlanInput.safeParse({ ...base, [field]: value });
      assert.equal(bad.success, false, `${field}=${value}`);
      assert.deepEqual(bad.error.issues.map((i) => [i.path[0], i.message]), [[field, `the number of ${field === "maxMailboxes" ? "mailboxes is a whole number from 1" : "aliases is a whole number from 0"} to 1000`]]);
    }
  });
});

describe("activation", () => {
  test("the token matches whatever its case, spaces and hyphens, and nothing matches once it is gone", async () => {
    const b = await box();
    await b.store.writeSecret("activation-token", "ABCD-EFGH-JKMN-PQRS-TVWX\n");
    assert.equal(normaliseToken(" abcd efgh-jkmn pqrs-tvwx "), "ABCDEFGHJKMNPQRSTVWX");
    assert.equal(await tokenMatches(b.store, "abcd-efgh-jkmn-pqrs-tvwx"), true);
    assert.equal(await tokenMatches(b.store, "ABCD-EFGH-JKMN-PQRS-TVWY"), false);
    assert.equal(await tokenMatches(b.store, ""), false);
    const empty = await box();
    assert.equal(await tokenMatches(empty.store, ""), false, "no token: nothing matches, not even an empty one");
  });

  test("the wizard moves forward only, and a step ahead is not open", async () => {
    const b = await box();
    assert.equal(reachedStep(b.db), "admin");
    assert.equal(stepOpen(b.db, "alarms"), false);
    addUser(b, "admin");
    assert.equal(adminExists(b.db), true);
    assert.equal(reachedStep(b.db), "alarms");
    advanceTo(b.db, "buddy");
    advanceTo(b.db, "keys");
    assert.equal(reachedStep(b.db), "buddy");
    assert.equal(stepOpen(b.db, "keys"), true);
    assert.equal(stepOpen(b.db, "finish"), false);
  });
});
