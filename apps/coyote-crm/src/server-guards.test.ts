// The panel's guards against strangers, for real: the built app behind the gate on loopback, its
// forms submitted as a browser without JavaScript submits them. Needs the app built (see
// server.test.ts).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { ACTIVATION_SECRET, StateStore } from "@coyote/spec";
import { FORWARDED_BY_HEADER, FORWARDING_SECRET } from "./lib/forwarding.ts";
import { closeCrmDb, crmDb } from "./lib/instance.ts";
import { hashPassword, SCRYPT_DEFAULT, setScryptParams } from "./lib/passwords.ts";
import { attempts, users } from "./lib/schema.ts";
import { takeVerificationSlot, VERIFY_SLOTS, ACCOUNT_SLOTS, setVerificationCaps } from "./lib/signin.ts";
import { startCrm, type RunningCrm } from "./server.ts";

const AUTHOR = { name: "test", email: "test@example.org" };
const CHEAP = { logN: 10, r: 8, p: 1 };
const TOKEN = "ABCD-EFGH-JKLM-NPQR";
const ADMIN = { email: "admin@example.org", password: "a long and unguessable passphrase 42" };
// Wide enough that the back-off alone decides a burst; one test narrows them again.
const WIDE = { total: 50, perAccount: 50 };
let dir = "";
let logger: CoyoteLogger;
let crm: RunningCrm;
let store: StateStore;
let secret = "";

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "crm-guards-"));
  store = await StateStore.open(dir, { author: AUTHOR });
  await store.writeSecret(ACTIVATION_SECRET, TOKEN);
  logger = createLogger({ component: "coyote-crm", file: join(dir, "logs", "coyote-crm.log") });
  crm = await startCrm({ stateDir: dir, logger, port: 0, sampleIntervalMs: 60_000, scrypt: CHEAP, verificationSlots: WIDE });
  secret = (await store.readSecret(FORWARDING_SECRET))?.toString("utf8") ?? "";
});
after(async () => {
  await crm.close();
  closeCrmDb();
  setScryptParams(SCRYPT_DEFAULT);
  setVerificationCaps({ total: VERIFY_SLOTS, perAccount: ACCOUNT_SLOTS });
  await logger.close();
  await rm(dir, { recursive: true, force: true });
});

const origin = () => new URL(crm.url).origin;

/** A GET with the request target and Host exactly as given (fetch would normalise both). */
function raw(target: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: new URL(crm.url).port, path: target, headers: { accept: "text/html", ...headers }, timeout: 10_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once("timeout", () => req.destroy(new Error(`GET ${target}: no answer`)));
    req.once("error", reject);
    req.end();
  });
}
const get = (path: string, headers: Record<string, string> = {}) => fetch(new URL(path, crm.url), { redirect: "manual", headers });

/** A form's page as a browser without JavaScript has it: its CSRF cookie and hidden fields. */
interface FormPage {
  readonly cookie: string;
  readonly hidden: ReadonlyArray<readonly [string, string]>;
}

const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

async function formPage(path: string): Promise<FormPage> {
  const page = await get(path);
  assert.equal(page.status, 200, `GET ${path}`);
  const cookie = /^([^;]+)/.exec(page.headers.get("set-cookie") ?? "")?.[1] ?? "";
  const html = await page.text();
  const hidden = [...html.matchAll(/<input type="hidden" name="([^"]+)"(?: value="([^"]*)")?\/>/g)].map((m) => [unescape(m[1] ?? ""), unescape(m[2] ?? "")] as const);
  return { cookie, hidden };
}

/** Submits a form page's form with `fields`, as the browser would; answers what the panel said. */
async function submit(path: string, form: FormPage, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; location: string | null; text: string }> {
  const body = new FormData();
  for (const [name, value] of form.hidden) body.append(name, value);
  for (const [name, value] of Object.entries(fields)) body.append(name, value);
  const r = await fetch(new URL(path, crm.url), { method: "POST", redirect: "manual", body, headers: { cookie: form.cookie, origin: origin(), ...headers } });
  return { status: r.status, location: r.headers.get("location"), text: await r.text() };
}

const from = (address: string) => ({ [FORWARDED_BY_HEADER]: secret, "x-forwarded-for": address });
const said = (text: string) => (text.includes("wrong e-mail address or password") ? "wrong" : text.includes("too many failed sign-ins") ? "wait" : text.includes("busy") ? "busy" : "other");

/** The headers of a GET with the request target and Host exactly as given. */
function rawHeaders(target: string, headers: Record<string, string>): Promise<Record<string, string | string[] | undefined>> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: new URL(crm.url).port, path: target, headers: { accept: "text/html", ...headers }, timeout: 10_000 }, (res) => {
      res.resume();
      resolve(res.headers);
    });
    req.once("timeout", () => req.destroy(new Error(`GET ${target}: no answer`)));
    req.once("error", reject);
    req.end();
  });
}

describe("the panel's guards", () => {
  test("sends HSTS on its public name when snitch-proxy forwarded the request over HTTPS, and only then", async () => {
    const box = "coyote.localhost";
    const viaProxy = { host: box, [FORWARDED_BY_HEADER]: secret, "x-forwarded-for": "192.0.2.7", "x-forwarded-proto": "https" };
    assert.equal((await rawHeaders("/login", viaProxy))["strict-transport-security"], "max-age=31536000");
    // Anyone on the box can send the public name to the loopback listener: no secret, no HSTS.
    assert.equal((await rawHeaders("/login", { ...viaProxy, [FORWARDED_BY_HEADER]: "not-the-secret" }))["strict-transport-security"], undefined);
    assert.equal((await rawHeaders("/login", { ...viaProxy, "x-forwarded-proto": "http" }))["strict-transport-security"], undefined);
    assert.equal((await rawHeaders("/login", { host: new URL(crm.url).host }))["strict-transport-security"], undefined, "plain HTTP on loopback");
  });


  test("of parallel activations with the right token, only one makes an admin", async () => {
    const pages = await Promise.all(Array.from({ length: 4 }, () => formPage("/activate")));
    const results = await Promise.all(
      pages.map((page, i) => submit("/activate", page, { token: TOKEN, email: `admin${i}@example.org`, password: ADMIN.password, confirm: ADMIN.password })),
    );
    const admins = crmDb().select().from(users).where(eq(users.role, "admin")).all();
    assert.equal(admins.length, 1, `${admins.length} admins; answers ${results.map((r) => r.status).join(", ")}`);
    assert.equal(results.filter((r) => r.status === 303).length, 1, "one activation went on to the next step");
    // The tests below sign in as this admin, on an activated box.
    crmDb().update(users).set({ email: ADMIN.email, passwordHash: await hashPassword(ADMIN.password) }).where(eq(users.role, "admin")).run();
    await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", activated: true }, { author: AUTHOR });
  });

  test("20 parallel wrong sign-ins with a limit of 5 get at most 5 password checks", async () => {
    const pages = await Promise.all(Array.from({ length: 20 }, () => formPage("/login")));
    const results = await Promise.all(pages.map((page) => submit("/login", page, { email: ADMIN.email, password: "wrong" }, from("192.0.2.50"))));
    const answers = results.map((r) => said(r.text));
    const checked = answers.filter((a) => a === "wrong").length;
    assert.ok(checked <= 5, `${checked} passwords checked: ${answers.join(" ")}`);
    assert.equal(answers.filter((a) => a === "wait").length, 20 - checked, answers.join(" "));
    const row = crmDb().select().from(attempts).where(eq(attempts.key, `login:${ADMIN.email}|192.0.2.50`)).get();
    assert.ok((row?.failures ?? 0) <= 5, `${row?.failures ?? 0} attempts counted`);
  });

  test("an attacker's failures keep only the attacker's network waiting: the admin gets in from another", async () => {
    for (let i = 0; i < 8; i++) {
      const r = await submit("/login", await formPage("/login"), { email: ADMIN.email, password: `guess ${i}` }, from("203.0.113.9"));
      assert.ok(["wrong", "wait"].includes(said(r.text)), r.text.slice(0, 200));
    }
    const attacker = await submit("/login", await formPage("/login"), { email: ADMIN.email, password: ADMIN.password }, from("203.0.113.9"));
    assert.equal(said(attacker.text), "wait");
    const admin = await submit("/login", await formPage("/login"), { email: ADMIN.email, password: ADMIN.password }, from("2001:db8:7::1"));
    assert.equal(admin.status, 303, admin.text.slice(0, 300));
    assert.equal(admin.location, "/admin");
  });

  test("X-Forwarded-For counts only with snitch-proxy's secret: without it every attempt is the socket's", async () => {
    const answers: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await submit("/login", await formPage("/login"), { email: ADMIN.email, password: "wrong" }, { "x-forwarded-for": `198.51.100.${i}`, [FORWARDED_BY_HEADER]: "not-the-secret" });
      answers.push(said(r.text));
    }
    assert.deepEqual(answers, ["wrong", "wrong", "wrong", "wrong", "wrong", "wait", "wait"], "spoofed addresses do not escape the back-off");
  });

  test("with every password-check slot taken, a sign-in is answered 429 at once and counts nothing", async () => {
    setVerificationCaps({ total: 1, perAccount: 1 });
    const held = takeVerificationSlot("someone@example.org");
    try {
      const page = await formPage("/login");
      const started = Date.now();
      const r = await submit("/login", page, { email: "x@example.org", password: "wrong" }, from("192.0.2.99"));
      assert.equal(r.status, 429);
      assert.ok(Date.now() - started < 1000);
    } finally {
      held?.();
      setVerificationCaps(WIDE);
    }
    assert.equal(crmDb().select().from(attempts).where(eq(attempts.key, "login-net:192.0.2.99")).get(), undefined);
  });

  test("after sign-in, a next= that would leave the site is replaced by the panel's own page", async () => {
    for (const next of ["/\t/evil.example", "/\\evil.example", "//evil.example", "https://evil.example/", "/\n/evil.example"]) {
      const r = await submit("/login", await formPage("/login"), { email: ADMIN.email, password: ADMIN.password, next }, from(`192.0.2.${next.length}`));
      assert.equal(r.status, 303, JSON.stringify(next));
      assert.equal(r.location, "/admin", JSON.stringify(next));
    }
    const r = await submit("/login", await formPage("/login"), { email: ADMIN.email, password: ADMIN.password, next: "/admin/services" }, from("192.0.2.200"));
    assert.equal(r.location, "/admin/services");
  });

  test("the gate decides on the decoded, normalised path and refuses what it cannot read", async () => {
    for (const path of ["/%61dmin", "/%41DMIN", "/ADMIN", "//admin", "/x/../admin", "/x/%2e%2e/admin", "/api/%61dmin/services"]) {
      assert.equal(await raw(path), 401, path);
    }
    for (const path of ["/%zz", "/%2fadmin", "/%5cadmin", "/%E0%A4%A", "/..%2fadmin", "/%09/admin", "/\\admin", "/../admin"]) assert.equal(await raw(path), 400, path);
  });

  test("only the box's own names are served: an unknown Host gets 421", async () => {
    const port = new URL(crm.url).port;
    assert.equal(await raw("/login", { host: "evil.example" }), 421);
    assert.equal(await raw("/login", { host: `evil.example:${port}` }), 421);
    assert.equal(await raw("/login", { host: `127.0.0.1:${Number(port) + 1}` }), 421, "another port is another site");
    assert.equal(await raw("/login", { host: `localhost:${port}` }), 200);
    assert.equal(await raw("/login", { host: "box.example.org" }), 200);
    assert.equal(await raw("/login", { host: "BOX.example.org:443" }), 200);
  });
});
