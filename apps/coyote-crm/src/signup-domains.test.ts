// The shop's signup form for real, as a browser without JavaScript submits it: the built Next.js
// app refuses domains no one may claim and creates nothing. Needs the app built (`npm run build`).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { StateStore } from "@coyote/spec";
import { closeCrmDb, crmDb } from "./lib/instance.ts";
import { ensureDefaultPlan } from "./lib/plans.ts";
import { users } from "./lib/schema.ts";
import { startCrm, type RunningCrm } from "./server.ts";

const AUTHOR = { name: "admin", email: "admin@box.net" };
let dir = "";
let logger: CoyoteLogger;
let crm: RunningCrm;
let store: StateStore;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "crm-signup-"));
  store = await StateStore.open(dir, { author: AUTHOR });
  await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "coyote.host.net", customerDomain: "box.net", activated: true, signupsOpen: true }, { author: AUTHOR });
  await store.applySpec({ schemaVersion: 1, kind: "Service", id: "shop", domains: [{ name: "shop.carol.org" }] }, { author: AUTHOR });
  logger = createLogger({ component: "coyote-crm", file: join(dir, "logs", "coyote-crm.log") });
  crm = await startCrm({ stateDir: dir, logger, port: 0, sampleIntervalMs: 60_000 });
  ensureDefaultPlan(crmDb());
});
after(async () => {
  await crm.close();
  closeCrmDb();
  await logger.close();
  await rm(dir, { recursive: true, force: true });
});

function decode(text: string): string {
  return text.replace(/&quot;/g, '"').replace(/&#x27;|&#39;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

/** Loads the signup page and submits its form with the given domain, as a browser without JavaScript does. */
async function submitSignup(domain: string): Promise<{ status: number; html: string }> {
  const page = await fetch(new URL("/signup", crm.url), { redirect: "manual" });
  assert.equal(page.status, 200);
  const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  const html = await page.text();
  const form = [...html.matchAll(/<form[\s\S]*?<\/form>/g)].map((m) => m[0]).find((f) => f.includes('name="domain"')) ?? "";
  assert.ok(form.includes('name="domain"'), "the signup form is on the page");
  const body = new FormData();
  for (const input of form.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
    const name = /name="([^"]*)"/.exec(input[0])?.[1];
    const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? "";
    if (name !== undefined) body.append(decode(name), decode(value));
  }
  const plan = /<option[^>]*value="([^"]+)"/.exec(form)?.[1] ?? "starter";
  for (const [name, value] of Object.entries({ email: "eve@mail.net", password: "correct horse battery", confirm: "correct horse battery", domain, plan })) body.append(name, value);
  const response = await fetch(new URL("/signup", crm.url), { method: "POST", redirect: "manual", body, headers: { cookie, origin: new URL(crm.url).origin } });
  return { status: response.status, html: decode(await response.text()) };
}

describe("signup over the real panel", () => {
  for (const [domain, says] of [
    ["gmail.com", "gmail.com belongs to gmail.com, a well-known public domain"],
    ["co.uk", "co.uk is a public suffix"],
    ["github.io", "github.io is a public suffix (a shared hosting domain)"],
    ["printer.local", "printer.local is under .local, a name reserved for special use"],
    ["mta-sts.eve.org", 'mta-sts.eve.org holds the label "mta-sts"'],
    ["carol.org", "carol.org holds shop.carol.org, which another service has"],
    ["host.net", "host.net holds the box's own name coyote.host.net"],
  ] as const) {
    test(`refuses ${domain} with a clear message and creates nothing`, async () => {
      const { status, html } = await submitSignup(domain);
      assert.equal(status, 200, "the form comes back with its errors");
      assert.ok(html.includes(says), `the page says why: ${says}`);
      assert.equal(crmDb().select().from(users).all().length, 0, "no account");
      assert.deepEqual((await store.listSpecs()).map((s) => s.id), ["server", "shop"], "no spec");
    });
  }

  test("accepts a customer's own domain, with the token that is to prove it", async () => {
    const own = await submitSignup("eve-shop.org");
    assert.equal(own.status, 303, own.html.slice(0, 500));
    const spec = JSON.parse(await readFile(join(dir, "specs", "services", "eve-shop-org.json"), "utf8")) as { domains: { name: string; challenge?: string }[] };
    assert.equal(spec.domains[0]?.name, "eve-shop.org");
    assert.match(spec.domains[0].challenge ?? "", /^[A-Za-z0-9_-]{32}$/);
  });
});
