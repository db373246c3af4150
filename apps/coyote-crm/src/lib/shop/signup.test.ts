import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { eq } from "drizzle-orm";
import { ServerSpec, ServiceSpec, StateStore, validate } from "@coyote/spec";
import { openDb, type CrmDb } from "../db.ts";
import { verifyPassword } from "../passwords.ts";
import { ensureDefaultPlan, savePlan } from "../plans.ts";
import { LIMITS } from "../ratelimit.ts";
import { customerServices, users } from "../schema.ts";
import { ACCOUNT_NOT_MADE, buildServiceSpec, signUp, type SignupDeps, type SignupStore } from "./signup.ts";

const PASSWORD = "correct horse battery";

function serverSpec(overrides: Record<string, unknown> = {}): ServerSpec {
  return validate(ServerSpec, { schemaVersion: 1, kind: "Server", name: "Test box", hostname: "coyote.box.test", customerDomain: "box.test", activated: true, signupsOpen: true, ...overrides }, "(test server)");
}

function form(overrides: Record<string, string> = {}): Record<string, string> {
  return { email: "alice@mail.example", password: PASSWORD, confirm: PASSWORD, domain: "alice.box.test", plan: "starter", ...overrides };
}

describe("signUp", () => {
  let dir: string;
  let store: StateStore;
  let db: CrmDb;
  let deps: SignupDeps;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "coyote-shop-"));
    store = await StateStore.open(dir);
    db = openDb(join(dir, "crm", "crm.db"));
    ensureDefaultPlan(db);
    deps = { db, store, server: serverSpec(), stateDir: dir, clientAddress: "192.0.2.1" };
    // The store checks a customer's names against the box's own, from the server spec it holds.
    await store.applySpec(serverSpec(), { author: { name: "admin", email: "admin@box.test" } });
  });

  afterEach(async () => {
    db.$client.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function serviceIds(): Promise<string[]> {
    return (await store.listSpecs()).filter((e) => e.id !== "server").map((e) => e.id);
  }

  async function sites(): Promise<string[]> {
    return readdir(join(dir, "sites")).catch(() => []);
  }

  /** Asserts that a signup created nothing: no user, no service row, no spec, no site folder. */
  async function assertNothingCreated(before: { specs: string[] } = { specs: [] }): Promise<void> {
    assert.equal(db.select().from(users).all().length, 0, "no user row");
    assert.equal(db.select().from(customerServices).all().length, 0, "no service row");
    assert.deepEqual(await serviceIds(), before.specs, "no new spec");
    assert.deepEqual(await sites(), [], "no site folder");
  }

  it("creates the account, the service row, the spec and the starter site for a subdomain of the box", async () => {
    const result = await signUp(deps, form());
    assert.deepEqual(result, { ok: true, userId: result.ok ? result.userId : "", email: "alice@mail.example", serviceId: "alice-box-test", domain: "alice.box.test" });
    assert.ok(result.ok);

    const user = db.select().from(users).where(eq(users.id, result.userId)).get();
    assert.equal(user?.role, "customer");
    assert.equal(user.email, "alice@mail.example");
    assert.ok(await verifyPassword(PASSWORD, user.passwordHash), "the panel login uses the signup password");

    const row = db.select().from(customerServices).where(eq(customerServices.serviceId, "alice-box-test")).get();
    assert.deepEqual({ ...row, createdAt: undefined }, { serviceId: "alice-box-test", userId: result.userId, planId: "starter", domain: "alice.box.test", mailAddress: "alice@alice.box.test", xmppAddress: "alice@alice.box.test", createdAt: undefined });

    const spec = (await store.getSpec("alice-box-test")) as ServiceSpec;
    assert.equal(spec.kind, "Service");
    assert.deepEqual(spec.owner, { customerId: result.userId, email: "alice@mail.example" });
    assert.equal(spec.plan, "starter");
    assert.deepEqual(spec.domains, [{ name: "alice.box.test", authoritative: false, records: [] }]);
    assert.deepEqual(spec.web, { hostnames: ["alice.box.test"], backend: { kind: "static", root: "." } });
    const mailbox = spec.mail?.mailboxes[0];
    const xmppUser = spec.xmpp?.users[0];
    assert.ok(mailbox !== undefined && xmppUser !== undefined);
    assert.equal(mailbox.address, "alice@alice.box.test");
    // The hash is in secrets/, named from the spec; the spec (and its history) holds none.
    assert.equal(mailbox.passwordHash, undefined);
    const hash = (await store.readSecret(mailbox.credential ?? ""))?.toString("utf8") ?? "";
    assert.match(hash, /^\{SCRAM-SHA-256\}16384,[A-Za-z0-9+/]{22}==,[A-Za-z0-9+/]{43}=,[A-Za-z0-9+/]{43}=$/);
    // Dovecot verifies it (Prosody's side is tested in xmppconf).
    const doveadm = spawnSync("doveadm", ["pw", "-t", hash, "-p", PASSWORD], { encoding: "utf8", timeout: 30_000 });
    if (doveadm.error === undefined) assert.match(doveadm.stdout, /\(verified\)/, doveadm.stderr);
    else if (process.env.CI === "true") assert.fail(`doveadm is needed with CI=true: ${doveadm.error.message}`);
    assert.deepEqual([xmppUser.username, xmppUser.domain], ["alice", "alice.box.test"]);
    assert.equal((await store.readSecret(xmppUser.credential ?? ""))?.toString("utf8"), hash, "one hash serves mail and XMPP");

    const html = await readFile(join(dir, "sites", "alice-box-test", "index.html"), "utf8");
    assert.match(html, /<h1>Welcome to alice\.box\.test<\/h1>/);
    assert.match(html, /Hosted by Coyote/);

    const history = await store.history("alice-box-test");
    assert.equal(history[0]?.author.email, "alice@mail.example");

    // The clear password is nowhere on disk: not in the spec (nor its history), not in the database.
    const specText = await readFile(join(dir, "specs", "services", "alice-box-test.json"), "utf8");
    assert.ok(!specText.includes(PASSWORD));
    assert.ok(!specText.includes("SCRAM"), "no password hash in the spec");
    assert.ok(!(await readFile(join(dir, "crm", "crm.db"))).includes(PASSWORD));
  });

  it("makes the customer's own domain authoritative", async () => {
    const result = await signUp(deps, form({ domain: "Bob-Shop.ORG", email: "Bob.Smith+shop@mail.example" }));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.serviceId, "bob-shop-org");
    assert.equal(result.email, "bob.smith+shop@mail.example");
    const spec = (await store.getSpec("bob-shop-org")) as ServiceSpec;
    assert.deepEqual(spec.domains.map((d) => [d.name, d.authoritative]), [["bob-shop.org", true]]);
    assert.equal(spec.mail?.mailboxes[0]?.address, "bob.smithshop@bob-shop.org");
    // Its own domain carries the token whose TXT record proves ownership; a name under the box's domain needs none.
    assert.match(spec.domains[0]?.challenge ?? "", /^[A-Za-z0-9_-]{32}$/);
  });

  it("gives the service only what its plan includes", async () => {
    savePlan(db, { id: "chat", name: "Chat", description: "", price: 300, xmpp: "on", active: "on", sortOrder: 1 });
    const result = await signUp(deps, form({ plan: "chat" }));
    assert.ok(result.ok, JSON.stringify(result));
    const spec = (await store.getSpec(result.serviceId)) as ServiceSpec;
    assert.equal(spec.web, undefined);
    assert.equal(spec.mail, undefined);
    assert.equal(spec.xmpp?.users.length, 1);
    assert.deepEqual(await sites(), [], "no website, no site folder");
    const row = db.select().from(customerServices).get();
    assert.deepEqual([row?.mailAddress, row?.xmppAddress], [null, "alice@alice.box.test"]);
  });

  it("adds -2 to the service id when the derived one is taken", async () => {
    await store.applySpec({ schemaVersion: 1, kind: "Service", id: "bob-org", domains: [{ name: "other.test" }] }, { author: { name: "admin", email: "admin@box.test" } });
    const result = await signUp(deps, form({ domain: "bob.org" }));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.serviceId, "bob-org-2");
  });

  it("refuses a domain that another service lists, serves on the web, or holds the zone of", async () => {
    await store.applySpec(
      { schemaVersion: 1, kind: "Service", id: "shop", domains: [{ name: "taken.org" }, { name: "web.net", authoritative: false }, { name: "deep.parent.org" }], web: { hostnames: ["web.net", "*.web.net"], backend: { kind: "upstream", address: "127.0.0.1:9000" } } },
      { author: { name: "admin", email: "admin@box.test" } },
    );
    const before = { specs: ["shop"] };
    for (const [domain, error] of [
      ["taken.org", "taken.org is already taken"],
      ["blog.web.net", "blog.web.net is already taken"],
      ["mail.taken.org", "mail.taken.org is already taken: it lies in taken.org, which another service holds"],
      ["parent.org", "parent.org holds deep.parent.org, which another service has; choose another domain"],
    ] as const) {
      const result = await signUp(deps, form({ domain }));
      assert.deepEqual(result, { ok: false, errors: { domain: error } });
      await assertNothingCreated(before);
    }
  });

  it("refuses a domain a customer already has", async () => {
    assert.ok((await signUp(deps, form())).ok);
    const result = await signUp(deps, form({ email: "carol@mail.example" }));
    assert.deepEqual(result, { ok: false, errors: { domain: "alice.box.test is already taken" } });
    assert.equal(db.select().from(users).all().length, 1);
    assert.deepEqual(await serviceIds(), ["alice-box-test"]);
  });

  it("refuses an e-mail address that already has an account only once the rest of the form is valid, without naming the field", async () => {
    assert.ok((await signUp(deps, form())).ok);
    const invalid = await signUp(deps, form({ email: " ALICE@mail.example ", domain: "a.b.box.test" }));
    assert.ok(!invalid.ok && invalid.errors?.email === undefined && invalid.errors?.domain !== undefined, "a form with another problem says nothing about the address");
    const result = await signUp(deps, form({ email: " ALICE@mail.example ", domain: "second.box.test" }));
    assert.deepEqual(result, { ok: false, message: ACCOUNT_NOT_MADE });
    assert.deepEqual(await serviceIds(), ["alice-box-test"]);
    assert.deepEqual(await sites(), ["alice-box-test"]);
  });

  for (const [name, domain, error] of [
    ["an invalid domain", "not a domain", 'not a valid domain name: "not a domain"'],
    ["an empty domain", "  ", "enter a domain"],
    ["a too deep subdomain", "a.b.box.test", "choose one name right under box.test, like yourname.box.test (a.b.box.test is too deep)"],
    ["the customer domain itself", "box.test", "box.test is the box's own domain; choose a name under it, like yourname.box.test"],
    ["a reserved name", "mail.box.test", "mail.box.test is reserved for the box itself; choose another name"],
    ["the box's hostname", "coyote.box.test", "coyote.box.test is reserved for the box itself; choose another name"],
    ["a public suffix", "co.uk", "co.uk is a public suffix (a top-level or registry domain) under which anyone registers names; choose a domain registered to you"],
    ["a well-known public domain", "gmail.com", "gmail.com belongs to gmail.com, a well-known public domain; choose your own domain"],
    ["a special-use name", "shop.local", "shop.local is under .local, a name reserved for special use that no one can own on the internet"],
    ["a label mail clients look up", "mta-sts.bob.org", 'mta-sts.bob.org holds the label "mta-sts", which mail clients and certificate authorities look up by name; choose a name without it'],
  ] as const) {
    it(`refuses ${name} and creates nothing`, async () => {
      const result = await signUp(deps, form({ domain }));
      assert.equal(result.ok, false);
      assert.ok(!result.ok);
      assert.ok(result.errors?.domain?.startsWith(error), `${result.errors?.domain ?? "(none)"} starts with ${error}`);
      await assertNothingCreated();
    });
  }

  it("refuses the box's own names when there is no customer domain", async () => {
    const d = { ...deps, server: serverSpec({ customerDomain: undefined, hostname: "panel.coyote.test" }) };
    for (const [domain, error] of [
      ["panel.coyote.test", "panel.coyote.test belongs to the box itself (panel.coyote.test); choose your own domain"],
      ["x.panel.coyote.test", "x.panel.coyote.test belongs to the box itself (panel.coyote.test); choose your own domain"],
      ["coyote.test", "coyote.test holds the box's own name panel.coyote.test; choose another domain"],
    ] as const) {
      assert.deepEqual(await signUp(d, form({ domain })), { ok: false, errors: { domain: error } });
    }
    await assertNothingCreated();
  });

  for (const [name, fields, field, error] of [
    ["a short password", { password: "abc123xyz", confirm: "abc123xyz" }, "password", "choose a stronger password: use at least 10 characters (this one has 9)"],
    ["a common password", { password: "Password123", confirm: "Password123" }, "password", "choose a stronger password: this one is among the most common passwords, which attackers try first"],
    ["a password with the e-mail's name", { password: "my-alice-secret", confirm: "my-alice-secret" }, "password", "choose a stronger password: it must not contain the name of your e-mail address (alice)"],
    ["a repeat that differs", { confirm: `${PASSWORD}!` }, "confirm", "the two passwords differ; type the same password twice"],
    ["an invalid e-mail", { email: "alice.example" }, "email", "enter a valid e-mail address, like you@example.org"],
    ["an unknown plan", { plan: "gold" }, "plan", 'there is no plan "gold" to sign up for; choose one of the list'],
  ] as const) {
    it(`refuses ${name} and creates nothing`, async () => {
      const result = await signUp(deps, form(fields));
      assert.deepEqual(result, { ok: false, errors: { [field]: error } });
      await assertNothingCreated();
    });
  }

  it("refuses an inactive plan", async () => {
    savePlan(db, { id: "old", name: "Old", description: "", price: 0, web: "on", sortOrder: 2 });
    assert.deepEqual(await signUp(deps, form({ plan: "old" })), { ok: false, errors: { plan: 'there is no plan "old" to sign up for; choose one of the list' } });
    await assertNothingCreated();
  });

  it("reports every wrong field at once", async () => {
    const result = await signUp(deps, { email: "", password: "short", confirm: "", domain: "a.b.box.test", plan: "" });
    assert.ok(!result.ok);
    assert.deepEqual(Object.keys(result.errors ?? {}).sort(), ["domain", "email", "password", "plan"]);
  });

  it("refuses everything while signups are closed", async () => {
    const result = await signUp({ ...deps, server: serverSpec({ signupsOpen: false }) }, form());
    assert.deepEqual(result, { ok: false, message: "signups are closed right now; please come back later" });
    await assertNothingCreated();
  });

  it("limits the attempts per client address, good ones and bad ones alike", async () => {
    let now = 1_000_000;
    const d = { ...deps, now: () => now };
    for (let i = 0; i < LIMITS.signupPerAddress.max; i++) {
      const result = await signUp(d, form({ domain: "a.b.box.test" }));
      assert.ok(!result.ok && result.errors?.domain !== undefined, `attempt ${i + 1} is validated`);
    }
    const blocked = await signUp(d, form());
    assert.deepEqual(blocked, { ok: false, message: "too many signups from your address; try again in 60 minutes" });
    await assertNothingCreated();
    assert.ok((await signUp({ ...d, clientAddress: "192.0.2.2" }, form())).ok, "another address may");
    now += LIMITS.signupPerAddress.windowMs;
    assert.ok((await signUp(d, form({ email: "dave@mail.example", domain: "dave.box.test" }))).ok, "the window ends");
  });

  it("undoes the account and the site when the spec cannot be stored", async () => {
    const failing: SignupStore = {
      readSpecs: () => store.readSpecs(),
      getSpec: (id) => store.getSpec(id),
      deleteSpec: (id, options) => store.deleteSpec(id, options),
      applySpec: () => Promise.reject(new Error("storing specs/services/alice-box-test.json: the disk is full")),
    };
    const result = await signUp({ ...deps, store: failing }, form());
    assert.deepEqual(result, { ok: false, message: "setting up alice.box.test failed: storing specs/services/alice-box-test.json: the disk is full" });
    await assertNothingCreated();
  });

  it("removes a spec that a failed write left behind, and only its own", async () => {
    const halfWriting: SignupStore = {
      readSpecs: () => store.readSpecs(),
      getSpec: (id) => store.getSpec(id),
      deleteSpec: (id, options) => store.deleteSpec(id, options),
      applySpec: async (value, options) => {
        await store.applySpec(value, options);
        throw new Error("committing: git died");
      },
    };
    const result = await signUp({ ...deps, store: halfWriting }, form());
    assert.deepEqual(result, { ok: false, message: "setting up alice.box.test failed: committing: git died" });
    await assertNothingCreated();
    assert.ok(!existsSync(join(dir, "specs", "services", "alice-box-test.json")));
  });
});

describe("buildServiceSpec", () => {
  it("builds a valid spec for each combination of parts", () => {
    for (const parts of [{ web: true, mail: false, xmpp: false }, { web: false, mail: true, xmpp: true }, { web: true, mail: true, xmpp: true }]) {
      const spec = buildServiceSpec({ serviceId: "x-test", userId: "u1", email: "x@y.test", plan: { id: "p", ...parts }, domain: "x.test", authoritative: true, local: "x", passwordHash: "{SCRAM-SHA-1}4096,c2FsdA==,a2V5,a2V5" });
      const parsed = ServiceSpec.parse(spec);
      assert.equal("web" in parsed, parts.web);
      assert.equal("mail" in parsed, parts.mail);
      assert.equal("xmpp" in parsed, parts.xmpp);
    }
  });
});
