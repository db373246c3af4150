import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decide, safeNext, type GateInput } from "./gate.ts";

const OWN = ["http://127.0.0.1:3000", "https://127.0.0.1:3000"];
const base: GateInput = { method: "GET", path: "/", activated: true, role: undefined, origin: undefined, ownOrigins: OWN };
const at = (fields: Partial<GateInput>) => decide({ ...base, ...fields });
/** The status of a refusal, or the kind of any other answer. */
const refusal = (fields: Partial<GateInput>) => {
  const d = at(fields);
  return d.kind === "deny" ? d.status : d.kind;
};

describe("the gate", () => {
  test("a box that is not activated serves only the wizard, whoever asks", () => {
    for (const role of [undefined, "admin", "customer"] as const) {
      for (const path of ["/", "/admin", "/admin/services", "/signup", "/account", "/login/x"]) {
        assert.deepEqual(at({ activated: false, role, path }), { kind: "redirect", location: "/activate" }, `${path} as ${role ?? "nobody"}`);
      }
        assert.equal(refusal({ activated: false, role, path: "/api/admin/services" }), 403);
      assert.deepEqual(at({ activated: false, role, path: "/activate" }), { kind: "pass" });
      assert.deepEqual(at({ activated: false, role, path: "/activate/finish" }), { kind: "pass" });
      assert.deepEqual(at({ activated: false, role, path: "/login" }), { kind: "pass" }, "an admin whose session ended signs in again");
    }
    // A prefix that only looks like the wizard is not the wizard.
    assert.equal(at({ activated: false, path: "/activatex" }).kind, "redirect");
  });

  test("once activated the wizard is gone", () => {
    assert.deepEqual(at({ path: "/activate" }), { kind: "redirect", location: "/login" });
    assert.deepEqual(at({ path: "/activate/keys", role: "admin" }), { kind: "redirect", location: "/admin" });
  });

  test("admin pages and API: 401 without a session, 403 for a customer, through for the admin", () => {
    for (const path of ["/admin", "/admin/services/blog", "/api/admin/services", "/api/admin/alarms"]) {
      assert.equal(refusal({ path }), 401, path);
      assert.equal(refusal({ path, role: "customer" }), 403, path);
      assert.deepEqual(at({ path, role: "admin" }), { kind: "pass" }, path);
    }
    assert.deepEqual(at({ path: "/administrator" }), { kind: "pass" }, "only the /admin folder is the admin's");
  });

  test("customer pages send strangers to sign in and the admin to the panel; the customer API answers 401/403", () => {
    assert.deepEqual(at({ path: "/account/services/x" }), { kind: "redirect", location: "/login?next=%2Faccount%2Fservices%2Fx" });
    assert.deepEqual(at({ path: "/account", role: "admin" }), { kind: "redirect", location: "/admin" });
    assert.deepEqual(at({ path: "/account", role: "customer" }), { kind: "pass" });
    assert.equal(refusal({ path: "/api/me/services" }), 401);
    assert.equal(refusal({ path: "/api/me/services", role: "admin" }), 403);
  });

  test("a mutation must come from the panel's own origin, even for the admin", () => {
    assert.equal(refusal({ method: "POST", path: "/admin/plans", role: "admin" }), 403, "no Origin");
    assert.equal(refusal({ method: "POST", path: "/admin/plans", role: "admin", origin: "https://evil.example" }), 403);
    assert.deepEqual(at({ method: "POST", path: "/admin/plans", role: "admin", origin: "http://127.0.0.1:3000" }), { kind: "pass" });
    assert.equal(refusal({ method: "DELETE", path: "/login", origin: "http://127.0.0.1:3001" }), 403);
    // Compiled assets are always served, and reads need no Origin.
    assert.deepEqual(at({ activated: false, path: "/_next/static/chunks/app.js" }), { kind: "pass" });
    assert.deepEqual(at({ activated: false, path: "/icon.svg" }), { kind: "pass" });
    assert.deepEqual(at({ path: "/" }), { kind: "pass" });
  });

  test("admin and customer folders are protected in any letter case and with a dotted suffix", () => {
    for (const path of ["/ADMIN", "/Admin/services", "/admin.rsc", "/API/admin/services", "/api/ADMIN"]) assert.equal(refusal({ path }), 401, path);
    assert.equal(refusal({ path: "/API/ME" }), 401);
    assert.equal(at({ path: "/Account" }).kind, "redirect");
  });

  test("safeNext keeps local paths only", () => {
    assert.equal(safeNext("/admin/services", "/x"), "/admin/services");
    assert.equal(safeNext("/account?tab=2#top", "/x"), "/account?tab=2#top");
    const bad = ["https://evil.example/", "//evil.example", "/\\evil.example", "admin", "/a\r\nset-cookie: x", "/\t/evil.example", "/\n/evil.example", "/ /evil.example", "/\u0000x", "/\u0085x", "", null, undefined];
    for (const next of bad) assert.equal(safeNext(next, "/x"), "/x", JSON.stringify(next));
  });
});
