import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { clientNetwork } from "./network.ts";
import { hashPassword, SCRYPT_DEFAULT, setScryptParams, verifyPassword } from "./passwords.ts";
import { LIMITS } from "./ratelimit.ts";
import { users } from "./schema.ts";
import { checkSignIn, takeVerificationSlot } from "./signin.ts";
import { sandboxes, type Sandbox } from "../test/support.ts";

const box = sandboxes();
// Cheaper than production, as every test's hashes; one step above the lowest, so that a hash at the
// lowest is "older" for the rehash test.
const CHEAP = { logN: 11, r: 8, p: 1 };
before(() => setScryptParams(CHEAP));
after(() => setScryptParams(SCRYPT_DEFAULT));
const PASSWORD = "correct horse battery staple";

async function addUser(b: Sandbox, email: string, hash?: string): Promise<string> {
  const id = `u-${email}`;
  b.db.insert(users).values({ id, email, passwordHash: hash ?? (await hashPassword(PASSWORD, CHEAP)), role: "admin", createdAt: new Date().toISOString() }).run();
  return id;
}

/** A verifier that counts its calls and takes a while, as scrypt does, so that a burst overlaps. */
function countingVerifier(): { calls: () => number; verify: (p: string, h: string) => Promise<boolean> } {
  let calls = 0;
  return {
    calls: () => calls,
    async verify(password, hash) {
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return verifyPassword(password, hash);
    },
  };
}

const WIDE = { total: 100, perAccount: 100 };

describe("sign-in throttling", () => {
  test("20 parallel wrong sign-ins with a limit of 5 get at most 5 password checks", async () => {
    const b = await box();
    await addUser(b, "admin@example.org");
    const v = countingVerifier();
    const limit = { max: 5, windowMs: 60_000, baseDelayMs: 60_000, maxDelayMs: 60_000 };
    const results = await Promise.all(
      Array.from({ length: 20 }, () => checkSignIn(b.db, "admin@example.org", "wrong", "192.0.2.7", { caps: WIDE, verify: v.verify, perAccountAddress: limit })),
    );
    assert.ok(v.calls() <= 5, `${v.calls()} verifications`);
    assert.equal(results.filter((r) => r.kind === "wrong").length, v.calls());
    assert.equal(results.filter((r) => r.kind === "wait").length, 20 - v.calls());
  });

  test("an attacker failing from one network does not keep the rightful user out from another", async () => {
    const b = await box();
    await addUser(b, "admin@example.org");
    for (let i = 0; i < 12; i++) await checkSignIn(b.db, "admin@example.org", `guess-${i}`, "203.0.113.9");
    const attacker = await checkSignIn(b.db, "admin@example.org", PASSWORD, "203.0.113.9");
    assert.equal(attacker.kind, "wait", "the attacker's network waits, even with the right password");
    const rightful = await checkSignIn(b.db, "admin@example.org", PASSWORD, "198.51.100.20");
    assert.equal(rightful.kind, "ok", "the admin elsewhere gets in at once");
  });

  test("the back-off is bounded: after the longest wait the same network may try again", async () => {
    const b = await box();
    await addUser(b, "admin@example.org");
    const t0 = Date.now();
    let now = t0;
    for (let i = 0; i < 30; i++) {
      const r = await checkSignIn(b.db, "admin@example.org", "wrong", "203.0.113.9", { now });
      now += r.kind === "wait" ? r.ms : 0;
    }
    const r = await checkSignIn(b.db, "admin@example.org", PASSWORD, "203.0.113.9", { now: now + LIMITS.loginPerAccountAddress.maxDelayMs });
    assert.equal(r.kind, "ok");
  });

  test("IPv6 clients count by their /64", async () => {
    assert.equal(clientNetwork("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    assert.equal(clientNetwork("2001:0db8:0001:0002:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
    assert.equal(clientNetwork("::ffff:192.0.2.1"), "192.0.2.1");
    assert.equal(clientNetwork("fe80::1%eth0"), "fe80:0:0:0::/64");
    assert.equal(clientNetwork("192.0.2.1"), "192.0.2.1");
    assert.equal(clientNetwork("not an address"), "unknown");
    const b = await box();
    await addUser(b, "admin@example.org");
    const limit = { max: 3, windowMs: 60_000, baseDelayMs: 60_000, maxDelayMs: 60_000 };
    for (let i = 1; i <= 3; i++) await checkSignIn(b.db, "admin@example.org", "wrong", `2001:db8:1:2::${i}`, { perAccountAddress: limit });
    const r = await checkSignIn(b.db, "admin@example.org", PASSWORD, "2001:db8:1:2:ffff::4", { perAccountAddress: limit });
    assert.equal(r.kind, "wait", "another address of the same /64 is the same client");
  });

  test("a full set of verification slots answers busy at once and counts nothing", async () => {
    const b = await box();
    await addUser(b, "admin@example.org");
    await addUser(b, "other@example.org");
    const held = takeVerificationSlot("admin@example.org", { total: 2, perAccount: 1 });
    assert.ok(held !== undefined);
    try {
      const sameAccount = await checkSignIn(b.db, "admin@example.org", PASSWORD, "198.51.100.20", { caps: { total: 2, perAccount: 1 } });
      assert.equal(sameAccount.kind, "busy", "one account's checks do not run side by side");
      const filler = takeVerificationSlot("", { total: 2, perAccount: 1 });
      const anyAccount = await checkSignIn(b.db, "other@example.org", PASSWORD, "198.51.100.20", { caps: { total: 2, perAccount: 1 } });
      filler?.();
      assert.equal(anyAccount.kind, "busy", "no more checks than slots in the whole process");
    } finally {
      held();
    }
    assert.deepEqual(b.db.$client.prepare("select count(*) as n from attempts").get(), { n: 0 }, "busy answers are not counted");
    assert.equal((await checkSignIn(b.db, "admin@example.org", PASSWORD, "198.51.100.20", { caps: { total: 2, perAccount: 1 } })).kind, "ok");
  });

  test("a good sign-in with an older hash stores a new one at the current parameters", async () => {
    const b = await box();
    const id = await addUser(b, "old@example.org", await hashPassword(PASSWORD, { logN: 10, r: 8, p: 1 }));
    assert.equal((await checkSignIn(b.db, "old@example.org", PASSWORD, "198.51.100.20")).kind, "ok");
    const stored = b.db.select().from(users).where(eq(users.id, id)).get()?.passwordHash ?? "";
    assert.match(stored, /^\$scrypt\$ln=11,r=8,p=1\$/);
    assert.equal(await verifyPassword(PASSWORD, stored), true);
  });
});
