// The panel for real: the built Next.js app behind the gate, on a temp state folder. Needs the
// app built (`npm run build`; `coyote test` builds first, and turbo builds before `test`).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { StateStore } from "@coyote/spec";
import { closeCrmDb, crmDb } from "./lib/instance.ts";
import { users } from "./lib/schema.ts";
import { createSession } from "./lib/sessions.ts";
import type { StartCrm } from "./index.ts";
import { startCrm, type RunningCrm } from "./server.ts";

// The component loads server.ts by URL (index.ts), untyped: this keeps the two in step.
startCrm satisfies StartCrm;

const AUTHOR = { name: "test", email: "test@example.org" };
let dir = "";
let logger: CoyoteLogger;
let crm: RunningCrm;
let store: StateStore;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "crm-server-"));
  store = await StateStore.open(dir, { author: AUTHOR });
  logger = createLogger({ component: "coyote-crm", file: join(dir, "logs", "coyote-crm.log") });
  crm = await startCrm({ stateDir: dir, logger, port: 0, sampleIntervalMs: 60_000 });
});
after(async () => {
  await crm.close();
  closeCrmDb();
  await logger.close();
  await rm(dir, { recursive: true, force: true });
});

const get = (path: string, headers: Record<string, string> = {}) => fetch(new URL(path, crm.url), { redirect: "manual", headers });
const post = (path: string, headers: Record<string, string> = {}) => fetch(new URL(path, crm.url), { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body: "a=1" });

function signIn(role: "admin" | "customer", now = Date.now()): string {
  const db = crmDb();
  const id = `${role}-${now}-${Math.random()}`;
  db.insert(users).values({ id, email: `${id}@example.org`, passwordHash: "$scrypt$unused", role, createdAt: new Date(now).toISOString() }).run();
  return `__Host-coyote-session=${createSession(db, id, now).token}`;
}

describe("the panel behind its gate", () => {
  test("a fresh box sends every page to the wizard and serves the wizard, with a CSRF cookie and security headers", async () => {
    for (const path of ["/", "/admin", "/admin/services", "/signup", "/account"]) {
      const r = await get(path);
      assert.equal(r.status, 303, path);
      assert.equal(r.headers.get("location"), "/activate", path);
    }
    const page = await get("/activate");
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /Activate this box/);
    assert.match(html, /Activation token/);
    assert.match(page.headers.get("set-cookie") ?? "", /^__Host-coyote-csrf=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Secure$/);
    assert.match(page.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
    assert.equal(page.headers.get("x-content-type-options"), "nosniff");
    assert.equal(page.headers.get("x-powered-by"), null);
    // The form carries the same CSRF token the cookie got.
    const token = /__Host-coyote-csrf=([^;]+)/.exec(page.headers.get("set-cookie") ?? "")?.[1] ?? "missing";
    assert.ok(html.includes(`value="${token}"`), "the form echoes the cookie's token");
    // A later step needs the admin's session.
    assert.equal((await get("/activate/alarms")).status, 401);
  });

  test("once activated: admin pages and API answer 401 to strangers, 403 to customers, and let the admin in", async () => {
    await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", activated: true }, { author: AUTHOR });
    const customer = signIn("customer");
    const admin = signIn("admin");
    for (const path of ["/admin", "/api/admin/services"]) {
      const anonymous = await get(path, { accept: "text/html" });
      assert.equal(anonymous.status, 401, path);
      const body = await anonymous.text();
      assert.ok(path.startsWith("/api") ? body.includes('"code":"UNAUTHENTICATED"') : body.includes(`/login?next=${encodeURIComponent(path)}`), body);
      assert.equal((await get(path, { cookie: customer })).status, 403, path);
      assert.equal((await get(path, { cookie: admin })).status, 200, path);
    }
    const ended = signIn("admin", Date.now() - 13 * 60 * 60 * 1000);
    assert.equal((await get("/admin", { cookie: ended })).status, 401, "an ended session opens nothing");
    assert.equal((await get("/activate")).status, 303, "the wizard is gone");
  });

  test("a change without this panel's Origin is refused before the app sees it, even for the admin", async () => {
    const admin = signIn("admin");
    assert.equal((await post("/admin/plans", { cookie: admin })).status, 403);
    assert.equal((await post("/admin/plans", { cookie: admin, origin: "https://evil.example" })).status, 403);
    assert.equal((await post("/login", { origin: "https://evil.example" })).status, 403);
    assert.notEqual((await post("/admin/plans", { cookie: admin, origin: new URL(crm.url).origin })).status, 403);
  });
});
